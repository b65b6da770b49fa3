"""``dlspec-ray init DIR``: copies of the shipped manifests and MNIST assets, over nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlspec_ray.cli import main
from dlspec_ray.commands.init import init_folder
from dlspec_ray.spec.catalog import Catalog


def test_init_copies_manifests_beside_the_assets_their_sources_name(tmp_path: Path):
    made = init_folder(tmp_path / "mine")
    assert len([p for p in made if p.suffix == ".yaml"]) == 22
    catalog = Catalog([tmp_path / "mine" / "manifests"])
    model = catalog.resolve("mnist-8@1.0.0", "model")
    for artifact in model.artifacts:  # relative sources resolve to the copied assets
        source = (Path(model.path).parent / artifact.source).resolve()
        assert source.is_file() and source.is_relative_to(tmp_path / "mine" / "assets")
    assert not any(p.is_symlink() for p in made)


@pytest.mark.parametrize(
    ("existing", "match"),
    [
        ("manifests", r"mine/manifests already exists; init writes over nothing"),
        ("assets", r"mine/assets already exists"),
    ],
)
def test_init_refuses_a_folder_that_has_either_already(tmp_path, capsys, existing, match):
    (tmp_path / "mine" / existing).mkdir(parents=True)
    (tmp_path / "mine" / existing / "keep.txt").write_text("the user's")
    assert main(["init", str(tmp_path / "mine")]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert (tmp_path / "mine" / existing / "keep.txt").read_text() == "the user's"
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == [existing]


def test_init_refuses_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["init", str(tmp_path / "f")]) == 2
    assert "expected a folder to fill, got a file" in capsys.readouterr().err
