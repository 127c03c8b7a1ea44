"""`vigil plots`: every plot `dvc.yaml` declares, as one HTML file that renders with no network.

DVC renders the page (`dvc plots show`, or `dvc plots diff REV…` against revisions) into an HTML
template; its own template loads Vega, Vega-Lite and vega-embed from a CDN, so an air-gapped reader
sees a blank page. Ours inlines the JavaScript bundle of the pinned registry package
`vl-convert-python` (the same libraries, built into its wheel, read locally), and the image plots
DVC copies beside the page are inlined as data URIs: the result is one file that opens anywhere.
"""

from __future__ import annotations

import base64
import html
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vigil import review
from vigil.atomic import write_text_atomic
from vigil.errors import VigilError
from vigil.review import check_repo, resolve_base
from vigil.writable import check_output_file

VEGA_LITE = "5.21"  # dvc-render writes Vega-Lite v5 specs: bundle the last v5 vl-convert ships
BUNDLE_MARK = "/*vigil:javascript-bundle*/"
TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>vigil plots</title>
<script>BUNDLE_MARK</script>
<style>
body { font-family: sans-serif; margin: 1em 2em; }
body > div { margin: 1.5em 0; }
img { max-width: 100%; }
header p { color: #444; }
</style>
</head>
<body>
<header><h1>vigil plots</h1><p>HEADER</p></header>
{plot_divs}
</body>
</html>
""".replace("BUNDLE_MARK", BUNDLE_MARK)
MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
}
EXTERNAL = re.compile(
    r"""<(?:script|img|link|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I
)


@dataclass(frozen=True)
class PlotsPage:
    path: Path
    charts: int  # Vega-Lite plots on the page
    images: int  # image plots, inlined
    bytes: int


def javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script (from vl-convert's wheel; no network)."""
    try:
        import vl_convert
    except ImportError:
        raise VigilError(
            "the vl-convert-python package is missing",
            hint="install the pinned stack: make env (requirements.txt)",
        ) from None
    bundle: str = vl_convert.javascript_bundle(vl_version=VEGA_LITE)  # type: ignore[call-arg]
    return bundle.replace("</script", "<\\/script")  # a script element ends at the first `</script`


def inline_images(page: str, folder: Path) -> tuple[str, int]:
    """Each `<img src="static/…">` DVC wrote as a data URI (the file read from `folder`)."""
    count = 0

    def inline(match: re.Match[str]) -> str:
        nonlocal count
        src = match.group(1)
        path = folder / src
        if src.startswith("data:") or not path.is_file():
            return match.group(0)
        count += 1
        mime = MIME.get(path.suffix.lower(), "application/octet-stream")
        return f'<img src="data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"'

    return re.sub(r'<img src="([^"]+)"', inline, page), count


def run_dvc(args: list[str], repo: Path) -> str:
    """Run `dvc ARGS` in `repo`; its stderr, or a VigilError when it failed."""
    proc = review.run_dvc(
        args,
        repo,
        path=repo,
        hint="run it in the vigil repository (dvc.yaml with a plots: section)",
    )
    return proc.stderr


def build_plots_page(repo: Path, out: Path, revisions: Sequence[str] = ()) -> PlotsPage:
    """Write every plot of `repo`'s dvc.yaml (the workspace, or it against `revisions`) to `out`."""
    repo = check_repo(Path(repo))
    out = check_output_file(Path(out), "--out", suffix=".html")
    commits = [resolve_base(repo, rev, field="--diff") for rev in revisions]
    bundle = javascript_bundle()
    shown = ", ".join(
        f"{html.escape(r)} ({c[:8]})" for r, c in zip(revisions, commits, strict=True)
    )
    header = (
        f"The workspace against {shown}." if revisions else "The workspace (dvc plots show)."
    ) + " Every plot dvc.yaml declares; renders offline (Vega inlined from vl-convert-python)."
    with tempfile.TemporaryDirectory(prefix="vigil-plots-") as tmp:
        template = Path(tmp) / "template.html"
        template.write_text(TEMPLATE.replace("HEADER", header), encoding="utf-8")
        # short commit ids: verified above, and what the page's legends show
        args = ["plots", "diff", *(c[:8] for c in commits)] if revisions else ["plots", "show"]
        folder = Path(tmp) / "page"
        said = run_dvc([*args, "--html-template", str(template), "-o", str(folder)], repo)
        if not (folder / "index.html").is_file():
            raise VigilError(
                f"`dvc {' '.join(args[:2])}` drew no page: {said.strip()[-300:] or 'no plots'}",
                path=repo,
                hint="run it in the vigil repository (dvc.yaml with a plots: section)",
            )
        page = (folder / "index.html").read_text(encoding="utf-8")
        page, images = inline_images(page, folder)
    if BUNDLE_MARK not in page:
        raise VigilError("dvc did not use vigil's HTML template", hint="check the dvc version")
    charts = page.count("vegaEmbed(")
    external = EXTERNAL.search(page)
    if external:
        raise VigilError(f"the page would load {external.group(0)!r} from the network")
    page = page.replace(BUNDLE_MARK, bundle, 1)
    write_text_atomic(out, page)
    return PlotsPage(out, charts, images, len(page.encode("utf-8")))
