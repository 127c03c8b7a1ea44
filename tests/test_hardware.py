"""vigil.hardware: the machine named beside every latency."""

from __future__ import annotations

from pathlib import Path

from vigil.hardware import describe, one_line, parse_cpuinfo

EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse sse2 avx2 fma f16c avx512f avx512bw avx512_vnni
processor\t: 1
model name\t: something else
flags\t\t: fpu
"""
AVX2_ONLY = "model name\t: Intel(R) Xeon(R) CPU E5-2686 v4\nflags\t\t: fpu avx2 fma\n"


def test_parse_reads_the_first_processor_and_keeps_known_flags_only() -> None:
    found = parse_cpuinfo(EPYC)
    assert found == {
        "cpu": "AMD EPYC 9R14",
        "isa": ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni"],
    }


def test_vnni_is_told_apart_from_avx2_only(tmp_path: Path) -> None:
    (tmp_path / "vnni").write_text(EPYC)
    (tmp_path / "avx2").write_text(AVX2_ONLY)
    assert describe(tmp_path / "vnni")["vnni"] is True
    avx2 = describe(tmp_path / "avx2")
    assert avx2["vnni"] is False and avx2["isa"] == ["avx2", "fma"]
    assert "(no VNNI)" in one_line(avx2) and "Xeon" in one_line(avx2)


def test_a_machine_without_cpuinfo_still_gets_a_block(tmp_path: Path) -> None:
    block = describe(tmp_path / "missing")
    assert block["isa"] == [] and block["vnni"] is False
    assert isinstance(block["logical_cpus"], int) and block["usable_cpus"]


def test_this_machine() -> None:
    block = describe()
    assert set(block) == {"cpu", "isa", "vnni", "logical_cpus", "usable_cpus", "machine", "system"}
    assert one_line(block)
