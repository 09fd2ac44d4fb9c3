"""The project's one compiled piece, ``retrieval._walk`` (the lone-query walk, see
``retrieval/_walk.c``). Everything else about the package is in ``pyproject.toml``.

The extension is optional: where it cannot be compiled (no C compiler or Python headers) the
install goes on and ``retrieval.faiss_index`` answers with the same walk in Python."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("retrieval._walk", ["retrieval/_walk.c"], optional=True,
                             extra_compile_args=["-O2"])])
