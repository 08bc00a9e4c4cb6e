"""Evaluate a template as if the message had every data field it reads.

The built-in samples cannot know a customer's own CRM fields
(``data.result[0].fields.custom_region``). To tell "this sample lacks a field" from "this
template cannot give a key", the linter evaluates the template once more with
`AssumingInterpreter`: a field that is missing (or null) anywhere inside the ``data``
namespace reads as a placeholder text ``{custom_region}`` and is recorded, with its full
path, in `assumed`. Outside ``data`` nothing is assumed: ``metadata.operationid`` stays a
typo. The delivery path never uses this; it only names the missing field in a failure.

A missing field the template reads as a list (``data.tags[*]``, ``join('-', data.tags)``)
is assumed to be a list of one placeholder, and its path is also kept in `lists`, so that
the fix offered is a list fallback (``data.tags || ['unknown']``): JMESPath gives null for a
projection of a missing field, and a missing list is then what a missing scalar is.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from jmespath.visitor import Options, TreeInterpreter

if TYPE_CHECKING:  # the stubs' name of a parsed node (a TypedDict they alone define)
    from jmespath.visitor import _TreeNode

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _segment(name: str) -> str:
    """A field name as a JMESPath path segment (quoted when it is not an identifier)."""
    return name if _IDENTIFIER.match(name) else '"' + name.replace('"', '\\"') + '"'


def data_paths(data: Any, root: str = "data") -> dict[int, str]:
    """id() of every object and list inside `data` → its JMESPath path."""
    paths: dict[int, str] = {}
    stack: list[tuple[Any, str]] = [(data, root)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            paths[id(node)] = path
            stack.extend((value, f"{path}.{_segment(str(key))}") for key, value in node.items())
        elif isinstance(node, list):
            paths[id(node)] = path
            stack.extend((value, f"{path}[{i}]") for i, value in enumerate(node))
    return paths


class AssumingInterpreter(TreeInterpreter):
    """A TreeInterpreter that reads a missing or null data field as a placeholder text."""

    def __init__(self, options: Options, data: Any) -> None:
        super().__init__(options)
        self._paths = data_paths(data)
        #: path → "missing" or "null", in the order the template read them.
        self.assumed: dict[str, str] = {}
        self._placeholders: dict[str, str] = {}  # placeholder text → the path it stands for
        #: the assumed paths read as lists
        self.lists: set[str] = set()

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(self._placeholders)

    def _placeholder(self, name: str, path: str) -> str:
        text = "{" + name + "}"
        self._placeholders.setdefault(text, path)
        return text

    def visit_field(self, node: _TreeNode, value: Any) -> Any:
        name = str(node["value"])
        if isinstance(value, str) and value in self._placeholders:
            # data.custom.region of an assumed `custom`: assumed along with it.
            return self._placeholder(name, f"{self._placeholders[value]}.{_segment(name)}")
        found = super().visit_field(node, value)
        if found is not None or not isinstance(value, dict):
            return found
        base = self._paths.get(id(value))
        if base is None:  # outside data: metadata and time are complete, never assumed
            return None
        path = f"{base}.{_segment(name)}"
        self.assumed.setdefault(path, "null" if name in value else "missing")
        return self._placeholder(name, path)

    def visit_index(self, node: _TreeNode, value: Any) -> Any:
        # data.tags[0] of an assumed `tags`: the placeholder stands for the element too.
        if isinstance(value, str) and value in self._placeholders:
            return value
        return super().visit_index(node, value)

    def _as_list(self, value: Any) -> Any:
        """A placeholder where a list is read: a list of that placeholder."""
        if isinstance(value, str) and value in self._placeholders:
            self.lists.add(self._placeholders[value])
            return [value]
        return value

    def _with_base(self, node: _TreeNode, base: Any) -> _TreeNode:
        # The node with its base (evaluated once, by the caller) as a literal.
        literal: _TreeNode = {"type": "literal", "value": base, "children": []}
        return {**node, "children": [literal, *node["children"][1:]]}

    def visit_projection(self, node: _TreeNode, value: Any) -> Any:
        base = self._as_list(self.visit(node["children"][0], value))
        return super().visit_projection(self._with_base(node, base), value)

    def visit_flatten(self, node: _TreeNode, value: Any) -> Any:
        base = self._as_list(self.visit(node["children"][0], value))
        return super().visit_flatten(self._with_base(node, base), value)

    def visit_filter_projection(self, node: _TreeNode, value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if isinstance(base, str) and base in self._placeholders:
            # An assumed element is unknown: it stands for one that passes the filter.
            return [self.visit(node["children"][1], element) for element in self._as_list(base)]
        return super().visit_filter_projection(self._with_base(node, base), value)

    def visit_function_expression(self, node: _TreeNode, value: Any) -> Any:
        name = str(node["value"])
        args = [self.visit(child, value) for child in node["children"]]
        # The interpreter's function table (an attribute the stubs do not declare).
        functions: Any = cast(Any, self)._functions
        spec = functions.FUNCTION_TABLE.get(name)
        if spec is not None:
            signature = spec["signature"]
            for i, arg in enumerate(args):
                if not signature:
                    break
                types = signature[min(i, len(signature) - 1)].get("types", [])
                if types and "string" not in types and any(t.startswith("array") for t in types):
                    args[i] = self._as_list(arg)
        return functions.call_function(name, args)
