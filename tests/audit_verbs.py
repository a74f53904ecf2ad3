"""The audit verbs the services record, read from their source: the `verb=` keywords and
the first argument of any `...record(...)` call. Tests that must know every verb (the scale
seeder's, the timeline's sentences) read them here."""

import ast
import inspect


def recorded_verbs(*modules) -> set[str]:
    verbs = set()
    for module in modules:
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg == "verb" and isinstance(keyword.value, ast.Constant):
                    verbs.add(keyword.value.value)
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0] if node.args else None
            if name.endswith("record") and isinstance(first, ast.Constant):
                verbs.add(first.value)
    return verbs
