"""The binding agrees with include/storectx.h.

Parses the header (the cbindgen output: one prototype per declaration, the
status enum, the handle structs, the version macros) and checks, for every
function in either, that the binding declares it with the ctypes equivalent
of each C parameter and return type; that ``Status`` has exactly the
header's enumerators with the same numbers; that the handle structures have
the header's one field; and that the version macros match the library's
``storectx_version()``.

Run: STORECTX_LIB=target/debug/libstorectx.so python3 bindings/python/test_header.py
(``cargo test`` does, from tests/python_binding.rs). STORECTX_HEADER overrides
the header's path.
"""

import ctypes
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import storectx  # noqa: E402

HEADER = os.environ.get("STORECTX_HEADER") or os.path.join(HERE, "..", "..", "include", "storectx.h")

HANDLES = {
    "storectx_install_guard": storectx.InstallGuardHandle,
    "storectx_borrow": storectx.BorrowHandle,
    "storectx_pause_guard": storectx.PauseGuardHandle,
}
OPAQUE = {"storectx_async_store", "storectx_write_guard", "storectx_suspended"}
SCALARS = {
    "storectx_status": ctypes.c_int32,
    "int32_t": ctypes.c_int32,
    "storectx_store_id": ctypes.c_uint64,
    "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t,
    "bool": ctypes.c_bool,
}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def read_header():
    with open(HEADER, encoding="utf-8") as f:
        return f.read()


def c_to_ctypes(decl):
    """The ctypes type the binding must use for one C type (`decl` without
    the parameter name), or raise for a type this test does not know."""
    t = " ".join(decl.replace("*", " * ").split())
    t = re.sub(r"\bconst\b", "", t)
    t = re.sub(r"\bstruct\b", "", t)
    stars = t.count("*")
    base = t.replace("*", "").strip()
    if base == "void" and stars == 0:
        return None
    if base == "char" and stars == 1:
        return ctypes.c_char_p
    if base in OPAQUE and stars == 1 or base == "void" and stars == 1:
        return ctypes.c_void_p
    if base in OPAQUE and stars == 2 or base == "void" and stars == 2:
        return ctypes.POINTER(ctypes.c_void_p)
    if base in HANDLES:
        return HANDLES[base] if stars == 0 else ctypes.POINTER(HANDLES[base])
    if base in SCALARS:
        return SCALARS[base] if stars == 0 else ctypes.POINTER(SCALARS[base])
    raise AssertionError("C type the test cannot map: %r" % decl)


def prototypes(text):
    """{name: (return type, [parameter types])} for every storectx_ function."""
    body = strip_comments(text)
    out = {}
    for m in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(storectx_\w+)\s*\(([^;{}]*?)\)\s*;", body):
        ret, name, params = m.group(1), m.group(2), m.group(3).strip()
        ret = ret.strip().split("\n")[-1].strip()
        args = []
        if params and params != "void":
            for p in params.split(","):
                p = " ".join(p.split())
                pm = re.match(r"(.*?[\s\*])(\w+)$", p)
                assert pm, "parameter without a name: %r in %s" % (p, name)
                args.append(pm.group(1).strip())
        out[name] = (ret, args)
    return out


def type_name(t):
    return "None" if t is None else getattr(t, "__name__", repr(t))


class HeaderAgreement(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = read_header()
        cls.protos = prototypes(cls.text)

    def test_parser_sees_the_whole_api(self):
        # A parser that found nothing would pass every other test.
        self.assertGreaterEqual(len(self.protos), 30, sorted(self.protos))
        for name in ("storectx_install", "storectx_get_current", "storectx_suspend",
                     "storectx_status_str", "storectx_version"):
            self.assertIn(name, self.protos)

    def test_same_functions(self):
        declared = set(storectx._PROTOTYPES)
        in_header = set(self.protos)
        self.assertEqual(sorted(in_header - declared), [],
                         "functions in storectx.h that the binding does not declare")
        self.assertEqual(sorted(declared - in_header), [],
                         "functions the binding declares that storectx.h does not have")

    def test_same_signatures(self):
        wrong = []
        for name, (ret, args) in sorted(self.protos.items()):
            if name not in storectx._PROTOTYPES:
                continue
            b_ret, b_args = storectx._PROTOTYPES[name]
            want_ret = c_to_ctypes(ret)
            want_args = [c_to_ctypes(a) for a in args]
            # a subclass is the same C type (storectx_async_store_clone returns
            # a c_void_p subclass that owns the new reference until it is kept)
            same_ret = b_ret is want_ret or (
                isinstance(b_ret, type) and isinstance(want_ret, type)
                and issubclass(b_ret, want_ret))
            if not same_ret:
                wrong.append("%s returns %s in C (%s), %s in the binding"
                             % (name, ret, type_name(want_ret), type_name(b_ret)))
            if len(b_args) != len(want_args) or any(
                    b is not w for b, w in zip(b_args, want_args)):
                wrong.append("%s takes (%s) in C = (%s), (%s) in the binding" % (
                    name, ", ".join(args), ", ".join(map(type_name, want_args)),
                    ", ".join(map(type_name, b_args))))
            fn = getattr(storectx.lib, name)
            self.assertIs(fn.restype, b_ret, name)
            self.assertEqual(list(fn.argtypes or []), list(b_args), name)
        self.assertEqual(wrong, [], "\n" + "\n".join(wrong))

    def test_status_table(self):
        body = strip_comments(self.text)
        # cbindgen may put `#if ... : int32_t #endif` between the name and the brace.
        m = re.search(r"enum\s+storectx_status\b[^{;]*\{(.*?)\}", body, re.S)
        self.assertIsNotNone(m, "no enum storectx_status in the header")
        header = {}
        for item in m.group(1).split(","):
            item = item.strip()
            if not item:
                continue
            em = re.match(r"(STORECTX_\w+)\s*=\s*(-?\d+)$", item)
            self.assertIsNotNone(em, "enumerator without an explicit value: %r" % item)
            header[em.group(1)] = int(em.group(2))
        self.assertGreaterEqual(len(header), 2)
        binding = {s.c_name: int(s) for s in storectx.Status}
        self.assertEqual(binding, header)
        for name, value in header.items():
            # The library's own name for every code agrees too.
            self.assertTrue(storectx.status_str(value).startswith(name),
                            (value, storectx.status_str(value)))

    def test_handle_structs(self):
        body = strip_comments(self.text)
        for cname, cls in HANDLES.items():
            m = re.search(r"typedef\s+struct\s+%s\s*\{(.*?)\}\s*%s\s*;" % (cname, cname), body, re.S)
            self.assertIsNotNone(m, cname)
            fields = [" ".join(f.split()) for f in m.group(1).split(";") if f.strip()]
            self.assertEqual(fields, ["uint64_t raw"], cname)
            self.assertEqual(cls._fields_, [("raw", ctypes.c_uint64)], cname)
            self.assertEqual(ctypes.sizeof(cls), 8)

    def test_version_macros(self):
        macros = dict(re.findall(r"#define STORECTX_VERSION_(MAJOR|MINOR|PATCH) (\d+)", self.text))
        self.assertEqual(set(macros), {"MAJOR", "MINOR", "PATCH"})
        self.assertEqual(storectx.version(),
                         "%s.%s.%s" % (macros["MAJOR"], macros["MINOR"], macros["PATCH"]))
        major, minor = int(macros["MAJOR"]), int(macros["MINOR"])
        self.assertEqual(storectx.ABI_VERSION[: 2 if major == 0 else 1],
                         (major, minor)[: 2 if major == 0 else 1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
