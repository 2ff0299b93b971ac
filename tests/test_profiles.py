import pytest

from echocare_lib.profiles import DEFAULT_PROFILE, ENV_VAR, PROFILES, get_profile


def test_three_profiles_defined_once():
    assert list(PROFILES) == ["smoke", "cpu", "paper"]
    for name, p in PROFILES.items():
        assert p.name == name


def test_profiles_scale_up():
    s, c, p = PROFILES["smoke"], PROFILES["cpu"], PROFILES["paper"]
    assert s.pretrain_steps < c.pretrain_steps < p.pretrain_steps
    assert s.n_trials <= c.n_trials < p.n_trials
    assert p.n_trials == 20  # paper section 4.4
    assert p.image_size == 256 and p.pretrain_batch_size == 256  # paper section 3.2
    assert p.pretrain_peak_lr == 1e-4 and p.pretrain_warmup_steps == 10_000
    assert s.data_source == c.data_source == "simulator" and p.data_source == "real"


def test_precedence_argument_env_default(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert get_profile().name == DEFAULT_PROFILE == "cpu"
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert get_profile().name == "smoke"
    assert get_profile(None).name == "smoke"
    assert get_profile("paper").name == "paper"  # an explicit parameter wins
    assert get_profile(" CPU ").name == "cpu"


def test_unknown_profile_names_source_and_choices(monkeypatch):
    with pytest.raises(ValueError, match=r"'gpu'.*argument.*smoke"):
        get_profile("gpu")
    monkeypatch.setenv(ENV_VAR, "fast")
    with pytest.raises(ValueError, match=r"'fast'.*ECHOCARE_PROFILE"):
        get_profile()
    with pytest.raises(TypeError):
        get_profile(3)


def test_replace_and_hash():
    c = PROFILES["cpu"]
    c2 = c.replace(n_trials=7)
    assert c2.n_trials == 7 and c.n_trials != 7
    assert c2.config_hash() != c.config_hash()
    assert c.config_hash() == PROFILES["cpu"].config_hash()
    with pytest.raises(ValueError, match="no field"):
        c.replace(n_trails=3)


def test_trial_counts_and_efficiency_fractions_do_not_invalidate_cached_rows():
    from echocare_lib.profiles import get_profile

    cpu = get_profile("cpu")
    same = cpu.replace(generative_trials=5, efficiency_trials=4, efficiency_generative_trials=3,
                       efficiency_generative_fractions=(0.1, 1.0),
                       train_fractions=(0.2, 0.6, 1.0))
    assert same.config_hash() == cpu.config_hash()
    assert cpu.replace(finetune_epochs=9).config_hash() != cpu.config_hash()
    assert cpu.to_dict()["efficiency_generative_fractions"] == [1.0]
