"""Value systems: built-in names, paths, column order, parents, validation (UserError naming the bad field)."""
from __future__ import annotations

import pytest
import yaml

from valuelex_utils.errors import UserError
from valuelex_utils.systems import load_system, parse_system

VALUELEX_COLUMNS = ["Competence", "Self-Competent", "User-Oriented", "Character", "Social", "Idealistic",
                    "Integrity", "Professional", "Ethical"]


def test_valuelex_columns_in_yaml_order():
    s = load_system("valuelex")
    assert s.columns() == VALUELEX_COLUMNS
    assert s.dimensions() == ["Competence", "Character", "Integrity"]
    assert s.leaves() == ["Self-Competent", "User-Oriented", "Social", "Idealistic", "Professional", "Ethical"]
    assert s.parent("Ethical") == "Integrity" and s.parent("Integrity") is None
    assert s.parents()["Social"] == "Character"
    assert "accuracy" in s.markers("Self-Competent")
    assert s.definition("Competence")


def test_schwartz_and_mft_shapes():
    sch = load_system("schwartz")
    assert len(sch.dimensions()) == 4 and len(sch.subdimensions()) == 10
    assert sch.columns()[:2] == ["Openness to Change", "Self-Direction"]
    mft = load_system("mft")
    assert mft.columns() == ["Care", "Fairness", "Loyalty", "Authority", "Sanctity"]
    assert mft.leaves() == mft.columns()  # foundations have no subdimensions: they are the leaves
    assert mft.opposites("Care")


def test_load_by_path_accepts_run_taxonomy_with_words(tmp_path):
    p = tmp_path / "taxonomy.yaml"
    p.write_text(yaml.safe_dump({"name": "run1", "dimensions": [
        {"name": "Helpfulness", "definition": "being useful", "subdimensions": [
            {"name": "Clarity", "definition": "clear answers", "words": ["clear", "concise"]}]},
        {"name": "Honesty", "markers": ["honest", "truthful"], "subdimensions": []},
    ]}))
    s = load_system(p)
    assert s.columns() == ["Helpfulness", "Clarity", "Honesty"]
    assert s.markers("Clarity") == ["clear", "concise"]
    assert s.leaves() == ["Clarity", "Honesty"]


@pytest.mark.parametrize("doc, field", [
    ({"name": "x"}, "dimensions"),
    ({"dimensions": [{"definition": "no name"}]}, "dimensions[0].name"),
    ({"dimensions": [{"name": "A", "markers": "ok", "subdimensions": [{"name": "B", "markers": {"a": 1}}]}]},
     "dimensions[0].subdimensions[0].markers"),
    ({"dimensions": [{"name": "A", "markers": ["a"]}, {"name": "A", "markers": ["b"]}]}, "used twice"),
    ({"dimensions": [{"name": "A", "markers": ["a"], "subdimensions": "nope"}]}, "dimensions[0].subdimensions"),
    ({"dimensions": [{"name": "id", "markers": ["a"]}]}, "reserved"),
    ({"dimensions": [{"name": "A"}]}, "needs a 'definition' or 'markers'"),
])
def test_invalid_system_names_the_bad_field(doc, field):
    with pytest.raises(UserError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_system(doc, path="t.yaml")


def test_unknown_name_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="unknown value system"):
        load_system("hofstede")
    with pytest.raises(UserError, match="not found"):
        load_system(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dimensions: [unclosed\n")
    with pytest.raises(UserError, match="YAML syntax error"):
        load_system(bad)


def test_the_builtin_systems_are_the_yaml_files_of_the_package(tmp_path, monkeypatch):
    """Adding a built-in system is dropping NAME.yaml into valuelex_utils/systems/: the names come from the folder,
    the paper's system first, then the others alphabetically; params accept exactly those (and `run`)."""
    from valuelex_utils import systems
    from valuelex_utils.params import NAMED_SYSTEMS, RUN_SYSTEM

    assert systems.BUILTIN_SYSTEMS == {"valuelex": "valuelex.yaml", "mft": "mft.yaml", "schwartz": "schwartz.yaml"}
    assert NAMED_SYSTEMS == (RUN_SYSTEM, *systems.BUILTIN_SYSTEMS)
    for name in ("zeta", "valuelex", "alpha"):
        (tmp_path / f"{name}.yaml").write_text("name: x\n")
    monkeypatch.setattr(systems, "SYSTEMS_DIR", tmp_path)
    assert list(systems._builtin_files()) == ["valuelex", "alpha", "zeta"]


def test_a_copy_of_a_builtin_system_keeps_its_annotated_set(tmp_path):
    """The annotated set pairs with a built-in by file name, or by the YAML's `name:` for a copy elsewhere."""
    from valuelex_utils.scoring import annotated_path
    from valuelex_utils.systems import SYSTEMS_DIR

    text = (SYSTEMS_DIR / "mft.yaml").read_text(encoding="utf-8")
    copy = tmp_path / "my_foundations.yaml"
    copy.write_text(text, encoding="utf-8")
    assert annotated_path(copy).name == "mft.csv"
    renamed = tmp_path / "other.yaml"
    renamed.write_text(text.replace("\nname: mft\n", "\nname: other\n"), encoding="utf-8")
    assert annotated_path(renamed) is None
