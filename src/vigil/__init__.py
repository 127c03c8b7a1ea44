"""vigil: a reproducible DVC pipeline from a labelled image dataset to a released edge detector.

Importing the package sets the project's offline switches (nothing may reach a model hub or
pip-install at run time); a value the user exported already wins.
"""

from vigil.offline import apply_offline_switches

apply_offline_switches()

__version__ = "0.1.0"
