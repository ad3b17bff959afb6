"""SVLL-ReID's two self-supervised terms as loss terms (docs/method.md §8.2, §8.3).

Their values are computed where their inputs are: the vision term by the stage-2 network's forward on the two SSL
views (one forward under DistributedDataParallel), the language term by the stage-1 step on two masked copies of the
batch's prompts. The terms read those values and weight them like any other term.
"""
from __future__ import annotations

from reid.losses.terms import TermFn, TermSpec, register_term


def _precomputed(name: str):
    def make() -> TermFn:
        return lambda outputs: outputs.get(name)  # None (e.g. a single-identity chunk): nothing this step
    return make


register_term(TermSpec("prompt", "ssl_lang", "ssl.lang_weight", _precomputed("ssl_lang"), needs=("ssl_lang",), order=30,
                       summary="SVLL-ReID's language SSL on masked prompts (docs/method.md §8.2)"))
register_term(TermSpec("image", "ssl_vis", "ssl.weight", _precomputed("ssl_vis"), needs=("ssl_vis",), order=40,
                       summary="SVLL-ReID's vision SSL on two random-erased views (docs/method.md §8.3)"))
