"""``file:`` models from your own Python files: sibling imports, sys.path left as it was, and the
factory's documented call (which keyword arguments it gets, seeding, weights)."""

from __future__ import annotations

import re
import sys
import textwrap

import pytest
import torch

import brainalign as ba
from brainalign.errors import ModelImportError

BLOCKS = """
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x).relu()
"""
NET = """
    import torch.nn as nn
    from blocks import Block

    CALLS = []

    def build(**kwargs):
        CALLS.append(kwargs)
        return nn.Sequential(Block(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, kwargs.get("out", 2)))

    def build_lazy():
        from helpers_lazy import width  # imported only when the factory runs
        return nn.Sequential(nn.Conv2d(3, width, 3), nn.Flatten())
"""


@pytest.fixture
def two_files(tmp_path):
    (tmp_path / "blocks.py").write_text(textwrap.dedent(BLOCKS))
    (tmp_path / "helpers_lazy.py").write_text("width = 5\n")
    (tmp_path / "mynet.py").write_text(textwrap.dedent(NET))
    (tmp_path / "badnet.py").write_text("from no_such_sibling import Block\n\ndef build():\n    pass\n")
    yield tmp_path
    for name in ("blocks", "helpers_lazy", "mynet"):
        sys.modules.pop(name, None)


def test_a_file_model_imports_its_sibling_modules_and_leaves_sys_path_as_it_was(two_files, monkeypatch):
    before = list(sys.path)
    model = ba.load_model(f"file:{two_files / 'mynet.py'}:build", input_size=16)
    assert type(model.module[0]).__name__ == "Block" and sys.path == before
    lazy = ba.load_model(f"file:{two_files / 'mynet.py'}:build_lazy", input_size=16)
    assert lazy.module[0].out_channels == 5 and sys.path == before
    # The module form, found in the working directory.
    sys.modules.pop("blocks", None)
    monkeypatch.chdir(two_files)
    assert type(ba.load_model("file:mynet:build", input_size=16).module[0]).__name__ == "Block"
    assert sys.path == before
    # A failing import restores sys.path too, and names the missing module.
    with pytest.raises(ModelImportError, match="no_such_sibling"):
        ba.load_model(f"file:{two_files / 'badnet.py'}:build")
    assert sys.path == before


def test_the_factory_gets_only_the_extra_options_and_is_seeded_and_given_weights_after(two_files, tmp_path):
    """What the README and the loader's docstring promise about build(**options)."""
    ref = f"file:{two_files / 'mynet.py'}:build"
    rng = torch.random.get_rng_state()
    a = ba.load_model(ref, seed=3, input_size=16, out=3)
    path = str((two_files / "mynet.py").resolve())
    calls = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == path).CALLS
    assert calls[-1] == {"out": 3}  # neither weights, seed nor the loader's own options
    assert a.module[-1].out_features == 3
    ba.load_model(ref, input_size=16)
    assert calls[-1] == {}  # the command line's --model file:…:build passes nothing
    assert torch.equal(torch.random.get_rng_state(), rng)  # the caller's RNG is untouched
    same, other = (ba.load_model(ref, seed=s, input_size=16, out=3) for s in (3, 4))
    w = [m.module[0].conv.weight for m in (a, same, other)]
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])
    ckpt = tmp_path / "w.pt"
    torch.save(other.module.state_dict(), ckpt)
    loaded = ba.load_model(ref, weights=str(ckpt), seed=3, input_size=16, out=3)
    assert calls[-1] == {"out": 3} and torch.equal(loaded.module[0].conv.weight, w[2])


FACTORY = """
    import brainalign as ba
    from blocks import Block
    import torch.nn as nn

    def build_net(weights="random", seed=0):
        return ba.wrap(nn.Sequential(Block(), nn.Flatten()), name="fact", input_size=8, weights=weights)
"""


def test_a_batch_factory_is_found_like_a_file_model_and_checked_before_the_run(two_files, monkeypatch):
    """`factory: myfactory:build_net` with myfactory.py (and the blocks.py it imports) in the
    working directory, as `file:mynet:build` is found; a factory module that is nowhere is a
    BatchSpecError naming the entry when the list is read (it was a bare ModuleNotFoundError in
    every pair, after the run had started)."""
    from brainalign.errors import BatchSpecError
    from brainalign.runner.batch import read_models

    (two_files / "myfactory.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.chdir(two_files)
    models = two_files / "models.yaml"
    models.write_text("models:\n  - {factory: 'myfactory:build_net', label: mine}\n")
    before = list(sys.path)
    try:
        model = read_models(models)[0].load()
    finally:
        sys.modules.pop("myfactory", None)
    assert model.name == "mine" and type(model.module[0]).__name__ == "Block" and sys.path == before
    models.write_text("models:\n  - zoo:lenet5\n  - {factory: 'nowhere_mod:build', label: x}\n")
    with pytest.raises(BatchSpecError, match=r"models\[1\]\.factory 'nowhere_mod:build': no module 'nowhere_mod'"):
        read_models(models)
    # A module that is there but lacks the callable: refused when the list is read, from the
    # module's source (it was found only when its pair ran), for a factory and a file: id alike.
    for entry, key in [("{factory: 'myfactory:no_such_fn', label: y}", "factory 'myfactory:no_such_fn'"),
                       ("'file:myfactory:build_nett'", "id 'file:myfactory:build_nett'"),
                       (f"'file:{two_files / 'mynet.py'}:nope'", "id 'file:"),
                       ("'file:./nowhere.py:build'", "id 'file:./nowhere.py:build': no file ./nowhere.py")]:
        models.write_text(f"models:\n  - zoo:lenet5\n  - {entry}\n")
        with pytest.raises(BatchSpecError, match=re.escape(f"models[1].{key}")) as err:
            read_models(models)
        assert "myfactory" not in sys.modules  # nothing was imported (run) to tell
        if "build_nett" in entry:
            assert "defines no 'build_nett'; it defines ['build_net']" in str(err.value)
    # the load itself still says so, for a module whose names cannot be read (a star import)
    (two_files / "starfactory.py").write_text("from myfactory import *\n")
    models.write_text("models:\n  - {factory: 'starfactory:no_such_fn', label: y}\n")
    try:
        with pytest.raises(ModelImportError, match="starfactory has no function 'no_such_fn'"):
            read_models(models)[0].load()
    finally:
        sys.modules.pop("myfactory", None)
        sys.modules.pop("starfactory", None)


def test_every_bad_batch_entry_is_named_at_once_and_a_factory_must_give_a_brainmodel(two_files, monkeypatch):
    from brainalign.errors import BatchSpecError
    from brainalign.runner.batch import read_models

    monkeypatch.chdir(two_files)
    (two_files / "plainfactory.py").write_text("import torch.nn as nn\n\ndef build(weights, seed):\n"
                                               "    return nn.Sequential(nn.Flatten())\n")
    models = two_files / "models.yaml"
    models.write_text("models:\n  - {factory: 'plainfactory:nope', label: a}\n  - zoo:lenet5\n"
                      "  - 'file:mynet:nope'\n  - {factory: 'nowhere_mod:build', label: b}\n"
                      "  - torchvision:no_such_net\n  - nosource:x\n"
                      "  - {id: zoo:lenet5, weights: gone.pt, label: c}\n")
    with pytest.raises(BatchSpecError) as err:
        read_models(models)
    said = str(err.value)
    assert all(f"models[{i}]" in said for i in (0, 2, 3, 4, 5, 6)) and "models[1]" not in said, said
    assert "models[4].id 'torchvision:no_such_net': Unknown model 'torchvision:no_such_net'" in said
    assert "models[5].id 'nosource:x': Unknown model" in said
    assert "models[6].weights 'gone.pt': no such checkpoint file" in said
    models.write_text("models:\n  - {factory: 'plainfactory', label: a}\n")
    with pytest.raises(BatchSpecError, match="factory 'plainfactory' is not 'package.module:function'"):
        read_models(models)
    models.write_text("models:\n  - {factory: 'plainfactory:build', label: a}\n"
                      "  - {factory: 'plainfactory:nokw', label: b}\n")
    with open(two_files / "plainfactory.py", "a") as f:
        f.write("\ndef nokw():\n    return None\n")
    try:
        plain, nokw = read_models(models)
        with pytest.raises(ModelImportError, match="returned a Sequential, not a BrainModel: return brainalign"):
            plain.load()
        with pytest.raises(ModelImportError, match=r"is called as nokw\(weights=..., seed=...\), but its "
                                                   r"signature is nokw\(\)"):
            nokw.load()
    finally:
        sys.modules.pop("plainfactory", None)


MODULE_FORMS = """
    import torch.nn as nn
    from torch import nn as tnn, optim
    import os.path
    def f(): pass
    async def g(): pass
    class C: pass
    a = b, c = 1, 2
    (d, [e, *rest]) = 1, [2, 3]
    h: int = 1
    i += 1
    for j in range(2): k = j
    with open(__file__) as fh: pass
    if True:
        l1 = 1
    else:
        def l2(): pass
    try:
        import numpy as l3
    except ImportError:
        l4 = None
    finally:
        l5 = 1
    while False:
        l6 = 1
    match 1:
        case 1:
            l7 = 1
    def outer():
        inner = 1
"""


def test_top_level_names_are_read_from_the_source_without_running_it(tmp_path):
    from brainalign.models.file_source import top_level_names

    p = tmp_path / "m.py"
    p.write_text(textwrap.dedent(MODULE_FORMS) + "raise SystemExit('ran')\n")
    names = top_level_names(p)
    want = {"nn", "tnn", "optim", "os", "f", "g", "C", "a", "b", "c", "d", "e", "rest", "h", "i", "j", "k",
            "fh", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "outer"}
    assert names == want
    # what a reading cannot tell: None, so the import decides
    for source in ["from os import *\n", "def __getattr__(name): pass\n", "globals()['x'] = 1\n",
                   "exec('y = 1')\n", "def broken(:\n"]:
        p.write_text(source)
        assert top_level_names(p) is None, source
