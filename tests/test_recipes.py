"""Per-backbone pendulum settings: applied only when asked, only to their backbone, overrides last."""

from smr_ts.recipes import PENDULUM_BACKBONE_SETTINGS, PENDULUM_RECIPE, pendulum_forecaster


def test_tuned_settings_apply_to_their_backbone_only_and_overrides_come_last():
    assert pendulum_forecaster("ode_rnn").lr == PENDULUM_RECIPE["lr"]  # the recipe unless asked
    tuned = pendulum_forecaster("ode_rnn", tuned=True)
    assert (tuned.lr, tuned.grad_clip) == (PENDULUM_BACKBONE_SETTINGS["ode_rnn"]["lr"], 1.0)
    assert pendulum_forecaster("ode_rnn", tuned=True, lr=0.001).lr == 0.001
    s5 = pendulum_forecaster("s5", smr=True, tuned=True)  # no probe-chosen settings: the recipe
    assert (s5.lr, s5.grad_clip, s5.smr) == (PENDULUM_RECIPE["lr"], None, True)
    assert set(PENDULUM_BACKBONE_SETTINGS) <= {"s5", "s6", "gru_dt", "ode_rnn"}


def test_s6_settings_hold_with_and_without_smr():
    for smr in (False, True):
        model = pendulum_forecaster("s6", smr=smr, tuned=True)
        assert (model.grad_clip, model.smr) == (PENDULUM_BACKBONE_SETTINGS["s6"]["grad_clip"], smr)
        assert pendulum_forecaster("s6", smr=smr).grad_clip is None  # the recipe unless asked
