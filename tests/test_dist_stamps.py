"""Distribution stamps: keyed by name and version, rewritten only when the version changes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from aotbuild.planning import dist_stamps


def install(site: Path, name: str, version: str) -> Path:
    for old in site.glob(f"{name}-*.dist-info"):
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return info


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    return site


@pytest.mark.parametrize("name,normal", [("MarkupSafe", "markupsafe"), ("typing_extensions", "typing-extensions"),
                                         ("zope.interface", "zope-interface"), ("a__b", "a-b")])
def test_normalize(name: str, normal: str) -> None:
    assert dist_stamps.normalize(name) == normal


def test_versions_come_from_dist_info_names_first_on_path_wins(site: Path, tmp_path: Path) -> None:
    install(site, "Fake_Lib", "1.2.3")
    later = tmp_path / "later"
    install(later, "fake_lib", "9.9")
    sys.path.append(str(later))
    assert dist_stamps.installed_versions()["fake-lib"] == "1.2.3"


def test_rewriting_metadata_keeps_the_stamp_and_an_upgrade_changes_it(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "aot-out"
    info = install(site, "fakelib", "1.0")
    [path] = dist_stamps.write_stamps(out, ["fakelib"])
    stamp = out / path
    assert stamp.read_text() == "fakelib==1.0\n"
    assert stamp.stat().st_mtime_ns > 1_000_000_000  # created now, never dated into the past
    os.utime(stamp, ns=(1, 1))
    (info / "METADATA").write_text((info / "METADATA").read_text() + "\n")  # what a reinstall does
    dist_stamps.refresh(out)
    assert stamp.stat().st_mtime_ns == 1  # untouched: ninja sees nothing new
    install(site, "fakelib", "2.0")
    dist_stamps.refresh(out)
    assert stamp.read_text() == "fakelib==2.0\n" and stamp.stat().st_mtime_ns != 1


def test_a_removed_distribution_changes_its_stamp(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "aot-out"
    info = install(site, "gone", "1.0")
    [path] = dist_stamps.write_stamps(out, ["gone"])
    (info / "METADATA").unlink()
    info.rmdir()
    dist_stamps.refresh(out)
    assert (out / path).read_text() == "gone==(not installed)\n"


def test_refresh_without_stamps_does_nothing(tmp_path: Path) -> None:
    dist_stamps.refresh(tmp_path / "aot-out")
    assert not (tmp_path / "aot-out").exists()


def test_refresh_skips_what_is_no_stamp_file(site: Path, tmp_path: Path) -> None:
    """A directory left by a forged cache entry naming "evil/stamp" (issue 21) failed every later build."""
    out = tmp_path / "aot-out"
    install(site, "fakelib", "1.0")
    [path] = dist_stamps.write_stamps(out, ["fakelib"])
    stamps = out / dist_stamps.STAMP_DIR
    (stamps / "evil").mkdir()
    (stamps / "evil" / "stamp").write_text("x")
    (stamps / "link").symlink_to(tmp_path / "elsewhere")
    install(site, "fakelib", "2.0")
    dist_stamps.refresh(out)
    assert (out / path).read_text() == "fakelib==2.0\n"
    assert not (tmp_path / "elsewhere").exists() and (stamps / "evil" / "stamp").read_text() == "x"


@pytest.mark.parametrize("name", ["evil/stamp", "..", "", "a/../b"])
def test_a_name_that_is_a_path_is_never_a_stamp(name: str) -> None:
    with pytest.raises(ValueError):
        dist_stamps.stamp_path(name)


def test_a_stamp_recreated_after_deletion_is_newer_than_earlier_outputs(site: Path, tmp_path: Path) -> None:
    """Issue 27, case 4: `rm` the stamp, upgrade, build one importer: the recreated stamp must be newer than
    the graph.json of another importer built with the old version, or that one stays "up to date"."""
    out = tmp_path / "aot-out"
    install(site, "upgraded", "1.0")
    [path] = dist_stamps.write_stamps(out, ["upgraded"])
    other_output = tmp_path / "graph.json"
    other_output.write_text("built with 1.0")
    (out / path).unlink()
    install(site, "upgraded", "2.0")
    dist_stamps.write_stamps(out, ["upgraded"])  # the one target built
    assert (out / path).read_text() == "upgraded==2.0\n"
    assert (out / path).stat().st_mtime_ns >= other_output.stat().st_mtime_ns
