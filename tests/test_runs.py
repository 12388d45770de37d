"""What names and describes a run: names from overrides, the HParams tab's settings, swept keys."""

from __future__ import annotations

import numpy as np

from w2v.plots import curves_plot
from w2v.runs import experiment_hparams, run_name, swept_keys


def test_run_name_from_overrides_without_plumbing():
    overrides = ["model=cbow", "model.window=3", "hydra.run.dir=/tmp/x", "trainer.enable_progress_bar=false",
                 "+model/optimizer=lazy_adam", "paths.outputs_root=o", "callbacks.tsne=null", "ckpt_path=last"]
    assert run_name(overrides) == "model=cbow,model.window=3,model.optimizer=lazy_adam"
    assert run_name([]) == run_name(["hydra.run.dir=x"]) == "defaults"
    assert run_name(["data.path=/home/me/my corpus.txt"]) == "data.path=_home_me_my_corpus.txt"


def test_long_run_names_are_cut_and_stay_distinct():
    names = {run_name([f"callbacks_not={i}", "data.vocab.specials=[" + "x," * 80 + f"{i}]"]) for i in range(3)}
    assert len(names) == 3 and all(len(n) == 100 for n in names)


def test_swept_keys_of_a_command_line():
    assert swept_keys(["model=cbow,sgns", "model.window=2", "seed=range(1,3)", "model/optimizer=adam,sgd"]) == \
        ["model", "seed", "model.optimizer"]


def test_hparams_are_the_experiments_settings_swept_first(make_cfg):
    cfg = make_cfg(["model=cbow"])
    hparams = experiment_hparams(cfg, swept=["model.window", "seed", "hydra.job.num"])
    assert list(hparams)[:2] == ["model/window", "seed"]
    assert hparams["model"] == "CBOW" and hparams["model/optimizer"] == "DeferredAdam"
    assert hparams["model/scheduler"] == "LinearDecay" and hparams["model/optimizer/lr"] == 0.03
    assert hparams["model/embedding_dim"] == 100 and hparams["model/shrink_window"] is True
    assert isinstance(hparams["trainer/max_epochs"], int) and "trainer/precision" in hparams
    assert not [k for k in hparams if "_target_" in k or "_partial_" in k
                or k.split("/")[0] in ("paths", "callbacks", "logger", "hydra")]
    assert not [k for k in hparams if k in ("data/cache_dir", "data/data_dir", "trainer/enable_progress_bar")]


def test_curves_without_points_draw_no_panel():
    assert curves_plot({"0": {}, "1": {"train/loss_step": []}}, ["train/loss_step"]) is None
    figure = curves_plot({"0": {"eval/x": [(1, 0.5), (2, 0.6)]}}, ["train/loss_step", "eval/x"])
    assert [ax.get_title() for ax in figure.axes] == ["eval/x"]
    assert np.allclose(figure.axes[0].lines[0].get_ydata(), [0.5, 0.6])
