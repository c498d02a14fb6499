"""An import-linter contract type: a feature is used from outside only through its public face.

import-linter's own `protected` contract names the modules to guard one by one; this one
guards every module of each listed feature package except its public modules (by default
`services` and `models`, packages or modules), so a new private module is covered the day
it is written. Imports inside a feature, and imports by the composition root (the modules
that wire every feature into the app), are not checked.
"""

from __future__ import annotations

from typing import Any

from importlinter import Contract, ContractCheck, fields, output


class PublicFaceContract(Contract):
    """Configuration options:

    - features:          the feature packages (e.g. webapp.donations).
    - public:            the submodule names other code may import (default services, models).
    - allowed_importers: modules (exactly these, not their descendants) that may import
                         anything of a feature: the composition root.
    """

    type_name = "public_face"

    features = fields.ListField(subfield=fields.StringField())
    public = fields.ListField(subfield=fields.StringField(), required=False)
    allowed_importers = fields.ListField(subfield=fields.StringField(), required=False)

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        features: list[str] = list(self.features)  # type: ignore[call-overload]
        public = set(self.public or ("services", "models"))  # type: ignore[attr-defined]
        allowed: list[str] = list(self.allowed_importers or ())  # type: ignore[attr-defined]
        broken: list[dict[str, Any]] = []
        for feature in features:
            for imported in sorted(graph.find_descendants(feature)):
                if imported.removeprefix(feature + ".").split(".")[0] in public:
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(imported)):
                    if importer in allowed or _within(importer, feature):
                        continue
                    details = graph.get_import_details(importer=importer, imported=imported)
                    broken.append(
                        {
                            "importer": importer,
                            "imported": imported,
                            "lines": [detail["line_number"] for detail in details],
                        }
                    )
        return ContractCheck(kept=not broken, metadata={"broken": broken, "public": public})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["broken"]:
            lines = ", ".join(str(line) for line in item["lines"]) or "?"
            output.print_error(f"{item['importer']} -> {item['imported']} (l.{lines})", bold=False)
        output.new_line()
        public = ", ".join(sorted(check.metadata["public"]))
        output.print(f"Import another feature only through its {public}.")


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")
