"""Crafted pickles, assembled opcode by opcode the way an attacker writes them (test support).

Several reach their gadget only through names that scikit-learn modules re-export
(``attrgetter``, ``itemgetter``, ``partial``, ``Path``, ``memmap``, ``Thread``): :func:`reexport`
checks that each really exists there, so every attack is real on the installed scikit-learn.
"""

from __future__ import annotations

import importlib
import struct
from pathlib import Path

import numpy as np

# --- a tiny pickle assembler -------------------------------------------------------------


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def call(func: bytes, *args: bytes) -> bytes:
    """``func(*args)``: MARK, the arguments, TUPLE, REDUCE."""
    return func + b"(" + b"".join(args) + b"tR"


def program(expr: bytes) -> bytes:
    return b"\x80\x02" + expr + b"."


def reexport(module: str, name: str, origin: object) -> bytes:
    """A global naming ``origin`` through a scikit-learn module that re-exports it."""
    assert getattr(importlib.import_module(module), name) is origin, f"{module}.{name} moved"
    return glob(module, name)


def getattr_chain(obj: bytes, dotted: str) -> bytes:
    """``operator.attrgetter(dotted)(obj)``, reached through scikit-learn."""
    import operator

    attrgetter = reexport("sklearn.feature_selection._base", "attrgetter", operator.attrgetter)
    return call(call(attrgetter, text(dotted)), obj)


def getitem(obj: bytes, key: str) -> bytes:
    import operator

    itemgetter = reexport("sklearn.utils.discovery", "itemgetter", operator.itemgetter)
    return call(call(itemgetter, text(key)), obj)


def builtin(name: str) -> bytes:
    """A builtin, found as ``Pipeline.__init__.__globals__['__builtins__'][name]``."""
    module_globals = getattr_chain(glob("sklearn.pipeline", "Pipeline"), "__init__.__globals__")
    return getitem(getitem(module_globals, "__builtins__"), name)


def eval_via_sklearn(code: str) -> bytes:
    return program(call(builtin("eval"), text(code)))


def write_marker(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('pwned')"


# --- the corpus ----------------------------------------------------------------------------


def corpus(marker: Path) -> dict[str, bytes]:
    import functools
    import pathlib
    import threading

    partial = reexport("sklearn.utils.extmath", "partial", functools.partial)
    path_cls = reexport("sklearn.utils.discovery", "Path", pathlib.Path)
    memmap = reexport("sklearn.externals.array_api_compat.numpy", "memmap", np.memmap)
    thread = reexport("sklearn.callback._transport", "Thread", threading.Thread)
    marker_text = text(str(marker))
    return {
        # Re-exported callables chained into eval, a file write, a thread.
        "attrgetter+itemgetter->eval": eval_via_sklearn(write_marker(marker)),
        "Path.write_text via attrgetter": program(
            call(getattr_chain(call(path_cls, marker_text), "write_text"), text("pwned"))
        ),
        "partial(Path.write_text)": program(
            call(call(partial, getattr_chain(call(path_cls, marker_text), "write_text")), text("x"))
        ),
        "numpy.memmap creates a file": program(
            call(memmap, marker_text, text("uint8"), text("w+"), b"K\x00", b"K\x01\x85")
        ),
        "Thread(target=eval).start()": program(
            call(
                getattr_chain(
                    call(thread, b"N", builtin("eval"), b"N", b"(" + text("1") + b"t"), "start"
                )
            )
        ),
        # Plain dangerous globals, and the other opcodes that call what they name.
        "REDUCE os.system": program(call(glob("os", "system"), text(f"touch {marker}"))),
        "REDUCE subprocess.Popen": program(
            call(glob("subprocess", "Popen"), text(f"touch {marker}"))
        ),
        "REDUCE builtins.exec": program(call(glob("builtins", "exec"), text(write_marker(marker)))),
        "INST posix.system": b"\x80\x02(" + text(f"touch {marker}") + b"iposix\nsystem\n.",
        "OBJ os.system": b"\x80\x02(" + glob("os", "system") + text(f"touch {marker}") + b"o.",
        "NEWOBJ pathlib.Path": program(glob("pathlib", "Path") + b"(" + marker_text + b"t\x81"),
        "copyreg._reconstructor": program(
            call(glob("copyreg", "_reconstructor"), glob("os", "system"), b"N", b"N")
        ),
        "numpy random ctor with a callable": program(
            call(
                glob("numpy.random._pickle", "__randomstate_ctor"),
                text("MT19937"),
                glob("builtins", "eval"),
            )
        ),
        # BUILD: patching a class for the whole process, __setstate__ of a foreign object.
        "BUILD on a class": program(
            glob("sklearn.pipeline", "Pipeline")
            + b"N}"
            + text("predict")
            + glob("sklearn.preprocessing._data", "StandardScaler")
            + b"s\x86b"
        ),
        "__setstate__ of functools.partial": program(
            glob("functools", "partial") + b"(" + glob("builtins", "print") + b"t\x81" + b"Nb"
        ),
        # Gadgets buried in containers and in a real estimator's state.
        "nested containers": program(
            b"](}" + text("a") + b"(" + call(glob("os", "system"), text(f"touch {marker}")) + b"tse"
        ),
        "estimator state": program(
            call(glob("sklearn.linear_model._stochastic_gradient", "SGDRegressor"))
            + b"}"
            + text("coef_")
            + getitem(text("x"), "0")
            + b"sb"
        ),
        "extension registry": b"\x80\x02\x82\x01.",
        "persistent id": b"\x80\x02" + text("x") + b"Q.",
    }
