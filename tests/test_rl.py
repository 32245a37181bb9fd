"""Classic RL (alignkit.rl): learning reaches its targets with fixed seeds, a save/load round trip acts identically,
a Stop from another thread checkpoints, and bad inputs fail with useful messages.

The notebooks (nbs/50_rl.ipynb and nbs/51_rl_*.ipynb … 56_rl_*.ipynb) show the same things as lessons; these are the
checks that must hold in CI as well, including a trainer stopped from a second thread and the old `run_dir=` name."""
import subprocess, sys, threading, time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from alignkit.core import ConfigError, Job, Status, UnknownNameError
import alignkit.rl as rl


@pytest.fixture(scope="module")
def ppo(tmp_path_factory):
    "PPO on CartPole-v1 with the zoo defaults, stopped at the first evaluation that reaches 475."
    d = tmp_path_factory.mktemp("ppo")
    return rl.train("CartPole-v1", "PPO", seed=0, output_dir=d/"run", eval_freq=5000, target_reward=475, dashboard=False)


@pytest.mark.slow
def test_ppo_defaults_solve_cartpole(ppo):
    mean, std = ppo.evaluate(10)
    assert mean >= 475, (mean, std, ppo.evaluations)
    assert ppo.solved_at is not None and ppo.solved_at <= ppo.steps
    assert isinstance(ppo, Job) and ppo.status is Status.STOPPED   # stopped early by target_reward, before the zoo's 100k steps
    assert (ppo.run_dir/"agent.zip").exists() and (ppo.run_dir/"log.jsonl").exists()


@pytest.mark.slow
def test_save_load_round_trip_same_actions(ppo, tmp_path):
    path = ppo.save(tmp_path/"agent.zip")
    again = rl.load(path)
    assert again.algo == "PPO" and again.env.id == "CartPole-v1" and again.status is Status.FINISHED   # it holds trained steps
    obs = np.random.default_rng(0).uniform(-1, 1, (500, 4)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(obs), ppo.predict(obs))
    assert again.evaluate(3) == ppo.evaluate(3)


def test_stop_from_another_thread_checkpoints(tmp_path):
    agent = rl.train("CartPole-v1", "A2C", steps=200_000, seed=0, output_dir=tmp_path/"a2c", eval_freq=0, checkpoint_freq=0,
                     background=True, dashboard=False)
    deadline = time.time() + 60
    while (agent.log.last_step or 0) < 2000 and time.time() < deadline: time.sleep(0.05)
    agent.stop(wait=True)
    assert agent.status is Status.STOPPED and 0 < agent.model.num_timesteps < 200_000
    ev = agent.log.events
    assert list(ev["event"])[-2:] == ["stop", "checkpoint"], ev
    ckpt = Path(ev["data"].iloc[-1]["path"])
    assert ckpt.exists() and ckpt.name == f"checkpoint-{agent.model.num_timesteps}.zip"


def test_run_dir_still_works_with_a_deprecation_warning(tmp_path):
    with pytest.warns(DeprecationWarning, match="output_dir"):
        agent = rl.train("CartPole-v1", "A2C", steps=80, seed=0, run_dir=tmp_path/"old", eval_freq=0, checkpoint_freq=0, dashboard=False)
    assert agent.run_dir == tmp_path/"old" and (tmp_path/"old"/"agent.zip").exists() and agent.status is Status.FINISHED
    with pytest.warns(DeprecationWarning, match="output_dir"): rl.reinforce("CartPole-v1", episodes=2, run_dir=tmp_path/"rf")
    assert (tmp_path/"rf"/"log.jsonl").exists()
    with pytest.raises(ConfigError, match="pass output_dir only"):
        rl.train("CartPole-v1", "A2C", steps=80, output_dir=tmp_path/"a", run_dir=tmp_path/"b")


def test_a_fresh_agent_loads_as_created(tmp_path):
    from stable_baselines3 import A2C
    src = rl.resolve_env("CartPole-v1")
    fresh = rl.Agent(A2C("MlpPolicy", src.vec(1), device="cpu"), src, "A2C")
    assert fresh.status is Status.CREATED and rl.load(fresh.save(tmp_path/"fresh.zip")).status is Status.CREATED


@pytest.mark.parametrize("seed", [0, 1])
def test_q_learning_close_to_value_iteration(seed):
    vi = rl.value_iteration("FrozenLake-v1")
    assert 0.70 < vi.success < 0.80                      # the known optimum of slippery 4x4 within 100 steps (~0.74)
    q = rl.q_learning("FrozenLake-v1", episodes=3000, seed=seed)
    assert q.success >= vi.success - 0.03, (q.success, vi.success)
    assert q.history["greedy_success"].dropna().iloc[0] < q.success   # it learned


def test_q_learning_not_slippery_finds_the_path():
    q = rl.q_learning("FrozenLake-v1", episodes=500, is_slippery=False, seed=0)
    assert q.success == 1.0 and q.evaluate(20) == (1.0, 0.0)


def test_reinforce_improves(tmp_path):
    r = rl.reinforce("CartPole-v1", episodes=80, seed=0, output_dir=tmp_path/"rf")
    assert r.returns[-20:].mean() > 2*r.returns[:20].mean(), r
    assert len(r.log.metrics) == 80


@pytest.mark.parametrize("bad,good", [("CartPol-v1", "CartPole-v1"), ("frozenlake-v1", "FrozenLake-v1"),
                                      ("MountainCarContinous-v0", "MountainCarContinuous-v0")])
def test_bad_env_id_suggests_the_right_name(bad, good):
    with pytest.raises(UnknownNameError) as e: rl.train(bad, "PPO", steps=100)
    suggested = str(e.value).split("Did you mean")[1].split("?")[0]
    assert repr(good) in suggested, str(e.value)
    assert len(str(e.value)) < 600                      # close matches, not the whole registry


class FourTupleEnv(gym.Env):
    "Old gym API: step returns four values, and observations outside the space."
    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}
    def step(self, action): return np.full(2, 5, np.float32), 1.0, False, {}


def test_broken_custom_env_shows_check_env_findings():
    with pytest.raises(rl.EnvCheckError) as e: rl.train(FourTupleEnv, "PPO", steps=100)
    msg = str(e.value)
    assert "FourTupleEnv" in msg and "step" in msg and "gymnasium" in msg, msg
    report = rl.check_env(FourTupleEnv())
    assert not report.ok and report.errors


class NoSeedEnv(FourTupleEnv):
    "Trainable but sloppy: unbounded observations give checker warnings."
    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    def step(self, action): return np.zeros(2, np.float32), 1.0, True, False, {}


def test_custom_env_warnings_shown_and_training_runs(tmp_path):
    with pytest.warns(rl.EnvCheckWarning, match="infinity"):
        agent = rl.train(NoSeedEnv, "PPO", steps=64, n_steps=32, batch_size=32, seed=0, output_dir=tmp_path/"c",
                         eval_freq=0, dashboard=False)
    assert agent.model.num_timesteps >= 64
    with pytest.raises(ConfigError, match="custom environment"):
        rl.load(agent.save(tmp_path/"c.zip"))
    with pytest.warns(rl.EnvCheckWarning): assert rl.load(tmp_path/"c.zip", env=NoSeedEnv).algo == "PPO"


def test_import_is_light():
    out = subprocess.run([sys.executable, "-c", "import sys, alignkit.rl; "
                          "print(sorted(m for m in ('torch', 'stable_baselines3', 'gymnasium', 'plotly') if m in sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
