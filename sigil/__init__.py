"""sigil: entity resolution and graph analytics on Spark and Beam."""

from pathlib import Path

# An installed sigil holds its subpackages (schemas, transforms, jobs, pipelines, conf)
# under sigil/. In a source checkout they are the repository's top-level folders; this
# folder, found first on sys.path when Python runs from the repository root, then looks for
# them there, so the checkout imports as the installed package does.
_checkout = Path(__file__).resolve().parent.parent
if not (Path(__file__).parent / "schemas").is_dir() and (_checkout / "schemas" / "datasets.py").is_file():
    __path__.append(str(_checkout))
