"""Tutorial delivery: first login, newer releases that respect edits, nbgitpuller links.

The rules are tested on `skydeck.hub.tutorials.deliver` directly (fast), then for
real: a hub started by ``skydeck up`` with its own tutorials folder spawns a lab,
the lab extension's Tutorials API agrees on every copy's state, and nbgitpuller's
``/git-pull`` handler clones a local git repository into the lab.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import nbformat
import pytest
import requests

from skydeck.catalog.release import ReleaseLayout
from skydeck.hub.datadir import DataDir
from skydeck.hub.tutorials import MANIFEST, deliver, main, new_name
from support.hub import RunningHub


def make_notebook(path: Path, title: str, code: str = "x = 1\nassert x == 1") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(f"# {title}\n\nA test tutorial."),
            nbformat.v4.new_code_cell(code),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "skydeck", "display_name": "Skydeck (Python 3.12)"}
    nbformat.write(nb, path)


def edit(path: Path, text: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell(text))
    nbformat.write(nb, path)


@pytest.fixture
def release(tmp_path: Path) -> Path:
    source = tmp_path / "shipped"
    make_notebook(source / "01_intro.ipynb", "Intro")
    make_notebook(source / "02_tap.ipynb", "TAP")
    make_notebook(source / "_private" / "draft.ipynb", "Draft (not shipped)")
    return source


def test_first_login_copies_every_tutorial(release: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = deliver(release, home)
    assert sorted(done.copied) == ["01_intro.ipynb", "02_tap.ipynb"]
    for name in done.copied:
        assert (home / "tutorials" / name).read_bytes() == (release / name).read_bytes()
    assert not (home / "tutorials" / "_private").exists()
    manifest = json.loads((home / "tutorials" / MANIFEST).read_text())
    assert set(manifest) == {"01_intro.ipynb", "02_tap.ipynb"}
    again = deliver(release, home)
    assert sorted(again.unchanged) == ["01_intro.ipynb", "02_tap.ipynb"]
    assert not again.copied and not again.updated and not again.offered


def test_newer_release_replaces_unedited_and_spares_edited(release: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    deliver(release, home)
    mine = home / "tutorials" / "02_tap.ipynb"
    edit(mine, "My own notes.")
    my_bytes = mine.read_bytes()
    # A newer release changes both tutorials and adds one.
    edit(release / "01_intro.ipynb", "Fixed a typo.")
    edit(release / "02_tap.ipynb", "New section.")
    make_notebook(release / "03_images.ipynb", "Images")

    done = deliver(release, home)
    assert done.updated == ["01_intro.ipynb"]
    assert done.offered == ["02_tap.ipynb"]
    assert done.copied == ["03_images.ipynb"]
    target = home / "tutorials"
    assert (target / "01_intro.ipynb").read_bytes() == (release / "01_intro.ipynb").read_bytes()
    assert mine.read_bytes() == my_bytes, "an edited copy must never be overwritten"
    offered = target / new_name("02_tap.ipynb")
    assert offered.name == "02_tap.new.ipynb"
    assert offered.read_bytes() == (release / "02_tap.ipynb").read_bytes()

    # Offered once; a later delivery neither duplicates it nor touches the user's copy.
    later = deliver(release, home)
    assert not later.offered and not later.updated and mine.read_bytes() == my_bytes
    # An even newer release refreshes the offer, unless the user edited the offer too.
    edit(release / "02_tap.ipynb", "Another section.")
    assert deliver(release, home).offered == ["02_tap.ipynb"]
    edit(offered, "Trying the new version.")
    edited_offer = offered.read_bytes()
    edit(release / "02_tap.ipynb", "Yet another section.")
    assert not deliver(release, home).offered
    assert offered.read_bytes() == edited_offer


def test_deleted_tutorial_stays_deleted(release: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    deliver(release, home)
    (home / "tutorials" / "01_intro.ipynb").unlink()
    done = deliver(release, home)
    assert done.kept_deleted == ["01_intro.ipynb"]
    assert not (home / "tutorials" / "01_intro.ipynb").exists()


def test_a_foreign_file_of_the_same_name_is_not_overwritten(release: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    theirs = home / "tutorials" / "01_intro.ipynb"
    make_notebook(theirs, "Something the user wrote")
    before = theirs.read_bytes()
    done = deliver(release, home)
    assert done.offered == ["01_intro.ipynb"] and theirs.read_bytes() == before


def test_missing_source_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="SKYDECK_TUTORIALS_DIR"):
        deliver(tmp_path / "nowhere", tmp_path / "home")


def test_command_line_for_init_containers(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--home", str(tmp_path / "home"), "--source", str(release)]) == 0
    assert "2 copied" in capsys.readouterr().out


# --- for real: skydeck up, a spawned lab, the lab extension, nbgitpuller -----------------


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Educator", "-c", "user.email=edu@example.org", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def pull(server: str, token: str, repo: Path, target: str) -> list[dict[str, object]]:
    """Call nbgitpuller's event-stream API as the /git-pull page's script does."""
    query = urlencode({"repo": repo.as_uri(), "branch": "main", "targetpath": target})
    response = requests.get(
        f"{server}/git-pull/api?{query}",
        headers={"Authorization": f"token {token}"},
        stream=True,
        timeout=120,
    )
    response.raise_for_status()
    events = []
    for line in response.iter_lines(decode_unicode=True):
        if line and line.startswith("data: "):
            event = json.loads(line[len("data: ") :])
            events.append(event)
            if event.get("phase") in ("finished", "error"):
                break
    return events


def contents(server: str, token: str, path: str) -> dict[str, Any]:
    response = requests.get(
        f"{server}/api/contents/{path}", headers={"Authorization": f"token {token}"}, timeout=60
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


@pytest.mark.slow
def test_first_login_newer_release_and_nbgitpuller_in_a_real_lab(
    hub_factory: Callable[..., RunningHub],
    tiny_release: ReleaseLayout,
    release: Path,
    tmp_path: Path,
) -> None:
    hub = hub_factory(
        release=Path(str(tiny_release.root)),
        env={"SKYDECK_TUTORIALS_DIR": str(release)},
        timeout=180,
    )
    user = "newcomer"
    token = hub.user_token(user)
    server = hub.start_server(user)

    # First login: the tutorials are in the home, and the Tutorials menu agrees they are current.
    listing = contents(server, token, "tutorials")
    names = sorted(item["name"] for item in listing["content"])
    assert names == ["01_intro.ipynb", "02_tap.ipynb"]
    menu = requests.get(
        f"{server}/skydeck/api/tutorials", headers={"Authorization": f"token {token}"}, timeout=60
    )
    menu.raise_for_status()
    assert menu.json()["source"] == str(release)
    assert {t["path"]: t["state"] for t in menu.json()["tutorials"]} == {
        "01_intro.ipynb": "current",
        "02_tap.ipynb": "current",
    }

    # The user edits one; a newer release ships; at the next start the edit survives.
    home = DataDir(hub.data_dir).home_root / user
    edit(home / "tutorials" / "02_tap.ipynb", "My notes.")
    edited = (home / "tutorials" / "02_tap.ipynb").read_bytes()
    edit(release / "01_intro.ipynb", "Release 2.")
    edit(release / "02_tap.ipynb", "Release 2.")
    hub.stop_server(user)
    server = hub.start_server(user)
    assert (home / "tutorials" / "01_intro.ipynb").read_bytes() == (
        release / "01_intro.ipynb"
    ).read_bytes()
    assert (home / "tutorials" / "02_tap.ipynb").read_bytes() == edited
    assert (home / "tutorials" / "02_tap.new.ipynb").read_bytes() == (
        release / "02_tap.ipynb"
    ).read_bytes()
    menu = requests.get(
        f"{server}/skydeck/api/tutorials", headers={"Authorization": f"token {token}"}, timeout=60
    ).json()
    assert {t["path"]: t["state"] for t in menu["tutorials"]} == {
        "01_intro.ipynb": "current",
        "02_tap.ipynb": "edited",
    }

    # nbgitpuller: an educator's repository, cloned by the link handler, then updated.
    course = tmp_path / "course"
    make_notebook(course / "lesson1.ipynb", "Lesson 1")
    git("init", "-q", "-b", "main", cwd=course)
    git("add", ".", cwd=course)
    git("commit", "-q", "-m", "lesson 1", cwd=course)
    page = requests.get(
        f"{server}/git-pull?{urlencode({'repo': course.as_uri(), 'branch': 'main'})}",
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert page.status_code == 200 and "nbgitpuller" in page.text.lower()
    events = pull(server, token, course, "course")
    assert events[-1]["phase"] == "finished", events
    assert contents(server, token, "course/lesson1.ipynb")["type"] == "notebook"

    # The student edits lesson 1; the educator adds lesson 2; pulling again merges both.
    edit(home / "course" / "lesson1.ipynb", "Student answer.")
    student = (home / "course" / "lesson1.ipynb").read_bytes()
    make_notebook(course / "lesson2.ipynb", "Lesson 2")
    git("add", ".", cwd=course)
    git("commit", "-q", "-m", "lesson 2", cwd=course)
    events = pull(server, token, course, "course")
    assert events[-1]["phase"] == "finished", events
    assert contents(server, token, "course/lesson2.ipynb")["type"] == "notebook"
    assert (home / "course" / "lesson1.ipynb").read_bytes() == student
    hub.stop_server(user)
    shutil.rmtree(course)
