"""The IMDb Large Movie Review archive: find it, download it safely, and read its 100,000 reviews in order."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from tqdm.auto import tqdm

from w2v.errors import ConfigError

log = logging.getLogger(__name__)

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"

# The documented reading order: labelled training reviews, labelled test reviews, then the
# 50,000 unlabelled ones; inside each folder, files sorted by their numeric review id.
SECTIONS = ("train/neg", "train/pos", "test/neg", "test/pos", "train/unsup")
_MEMBER = re.compile(r"^aclImdb/(train/neg|train/pos|test/neg|test/pos|train/unsup)/(\d+)_\d+\.txt$")
_HTML_TAG = re.compile(r"<[^>]{0,100}>")


def strip_html(text: str) -> str:
    """Replace HTML tags such as `<br />` by a space."""
    return _HTML_TAG.sub(" ", text)


def locate_archive(data_dir: str | os.PathLike | None, archive: str | os.PathLike | None) -> Path | None:
    """The archive named by `archive`, else `data_dir/aclImdb_v1.tar.gz` if it exists, else None."""
    if archive is not None:
        path = Path(archive).expanduser()
        if not path.is_file():
            raise ConfigError(f"IMDb archive not found at data.archive={path}; fix the path or drop the override")
        return path
    if data_dir is not None:
        path = Path(data_dir).expanduser() / ARCHIVE_NAME
        if path.is_file():
            return path
    return None


def download_archive(url: str, dest: Path, md5: str | None) -> Path:
    """Download `url` to `dest` through a temporary file, renamed only when complete and verified."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}", disable=None) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if md5 is not None and digest.hexdigest() != md5:
            raise ConfigError(
                f"downloaded {url} has md5 {digest.hexdigest()}, expected {md5}; "
                f"the download was discarded, try again or supply the archive with data.archive=PATH"
            )
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, OSError) as err:
        raise ConfigError(
            f"could not download the IMDb archive from {url} ({err}); put {ARCHIVE_NAME} in the data "
            f"directory (W2V_DATA_DIR or paths.data_dir) or pass data.archive=PATH"
        ) from err
    finally:
        tmp.unlink(missing_ok=True)


def quarantine(path: Path) -> str:
    """Move a bad archive aside so it is never used again; say where it went (or why it stayed)."""
    aside = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, aside)
        return f"moved aside to {aside}"
    except OSError as err:
        return f"left in place because it could not be moved ({err.strerror}); delete or replace it"


def read_reviews(archive: Path, max_docs: int | None = None, move_aside: bool = True) -> list[str]:
    """All reviews of the archive in the documented order, HTML tags removed, first `max_docs` only.

    The archive may be gzipped, as downloaded, or not (some browsers unpack the download). A damaged
    one is moved aside with `move_aside` (one found in the data directory, which a later run would
    otherwise take again, or download anew once it is gone), else left where the user named it.

    The first `max_docs` reviews are known as soon as the first section's ids 0..max_docs-1 have
    been read (ids are unique): reading stops there, well before the end of the archive when those
    come early (train/neg ends at about a third of the IMDb archive).
    """
    found: dict[str, list[tuple[int, str]]] = {section: [] for section in SECTIONS}
    first_ids: set[int] = set()
    leading = 0  # ids 0..leading-1 of the first section have been read
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tqdm(tar, desc="read IMDb archive", unit=" files", total=100_016, leave=False, disable=None):
                match = _MEMBER.match(member.name)
                if match is None or not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                section, review_id = match.group(1), int(match.group(2))
                found[section].append((review_id, handle.read().decode("utf-8", errors="replace")))
                if max_docs is not None and section == SECTIONS[0]:
                    first_ids.add(review_id)
                    while leading in first_ids:
                        leading += 1
                    if leading >= max_docs:
                        break
    except PermissionError as err:
        raise ConfigError(f"cannot read the IMDb archive {archive} ({err.strerror}); make it readable or pass "
                          "another copy with data.archive=PATH") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        if move_aside:
            fix = f"it was {quarantine(archive)}; download it again or pass a good copy with data.archive=PATH"
        else:
            fix = f"replace it with a good copy (from {IMDB_URL}) or pass another with data.archive=PATH"
        raise ConfigError(f"IMDb archive {archive} is truncated or corrupt ({err}); {fix}") from err
    reviews = [strip_html(text) for section in SECTIONS for _, text in sorted(found[section])]
    if not reviews:
        raise ConfigError(
            f"{archive} holds no aclImdb/<split>/<label>/*.txt reviews; pass the Large Movie Review "
            f"archive {ARCHIVE_NAME} with data.archive=PATH"
        )
    return reviews if max_docs is None else reviews[:max_docs]
