"""A deterministic synthetic person-ReID world written in Market-1501 layout.

Real datasets cannot be downloaded everywhere, so the embedded default renders
a small but honest ReID problem: little people with fixed attributes (clothing
colours and patterns, shoes, hair, skin, bags, hats, build), grouped in
*families* whose members differ in only one or two attributes, seen by cameras
that each have their own viewpoint mix, light, colour cast, blur, noise, scale
and background. The world is written exactly as Market-1501 is
(``Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}`` with
names like ``0002_c1s1_000451_03.jpg``, distractors pid 0 and junk pid -1), so
the real Market parser reads it and training takes the same code path as on a
real dataset. Per-identity captions (``captions.json``) let a small CLIP be
pretrained on the same world.

Everything is drawn from ``numpy.random.Generator`` streams keyed by the seed,
so the same :class:`WorldSpec` gives byte-identical files.

The package, one concern per module: ``spec`` (the world's knobs, :class:`WorldSpec`), ``attributes`` (what a person
wears, identities in families), ``captions`` (the text of an identity), ``figure`` (drawing one person), ``camera``
(a camera's style and effects), ``render`` (one crop), ``plan`` (who is seen where, the random streams), ``layout``
(Market-1501 names) and ``world`` (writing, caching and reading a world back).
"""
from reid.data.synthetic.attributes import ATTRIBUTE_GROUPS, MUTABLE_GROUPS
from reid.data.synthetic.captions import describe, load_captions
from reid.data.synthetic.layout import GALLERY_DIRNAME, MARKET_DIRNAME, QUERY_DIRNAME, TRAIN_DIRNAME
from reid.data.synthetic.spec import WorldSpec
from reid.data.synthetic.world import ensure_world, generate_world, load_attributes

__all__ = [
    "ATTRIBUTE_GROUPS", "GALLERY_DIRNAME", "MARKET_DIRNAME", "MUTABLE_GROUPS", "QUERY_DIRNAME", "TRAIN_DIRNAME",
    "WorldSpec", "describe", "ensure_world", "generate_world", "load_attributes", "load_captions",
]
