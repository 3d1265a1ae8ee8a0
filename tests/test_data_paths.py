"""The rule for paths read from data files (lmnet/data/paths.py): inside the root, or refused."""

import os

import pytest

from lmnet.data.paths import PathOutsideRootError, resolve_inside
from lmnet.errors import DataError


def test_relative_names_resolve_under_the_root(tmp_path):
    assert resolve_inside(tmp_path, "a/b.png", source="i.json", field="img") == tmp_path / "a" / "b.png"
    got = resolve_inside(tmp_path, "car_pascal\\2008_000052.jpg", source="car_train.mat", field="rel_path",
                         backslashes=True)
    assert got == tmp_path / "car_pascal" / "2008_000052.jpg"


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", "a/../../x", "C:/Windows", "a\\..\\..\\x", "",
                                 "a\x00b", 5, None])
def test_names_that_leave_the_root_are_refused_naming_source_and_field(tmp_path, bad):
    with pytest.raises(PathOutsideRootError) as e:
        resolve_inside(tmp_path, bad, source="pix3d.json", field="entry 3: img")
    assert "pix3d.json: entry 3: img" in str(e.value)
    assert isinstance(e.value, DataError)


def test_backslash_dotdot_is_refused_also_when_backslashes_separate_folders(tmp_path):
    with pytest.raises(PathOutsideRootError, match="not a relative path inside"):
        resolve_inside(tmp_path, "car_pascal\\..\\..\\secret", source="car_val.mat", field="rel_path",
                       backslashes=True)


def test_a_symlink_out_of_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "link")
    with pytest.raises(PathOutsideRootError, match="outside the dataset root"):
        resolve_inside(root, "link/x.png", source="images.txt", field="line 2")
