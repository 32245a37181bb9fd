"""Classic-RL benchmarks (alignkit.rl), measured side by side in this one run:

- rl/ppo_fps_ratio, rl/dqn_fps_ratio: environment steps per second of `alignkit.rl.train` ÷ those of a bare
  Stable-Baselines3 `model.learn()` at the same settings (CartPole-v1, the rl-baselines3-zoo hyperparameters that
  `train` uses, same seed, `make_vec_env` envs in both). The wrapper side runs in a background thread (as in a
  notebook) with the run-log callback and a headless Dashboard following the log; periodic evaluation and
  checkpoints are off, since they are extra work the user asks for, not overhead. Only `learn()` is timed on both
  sides (model construction is the same code). Steps per second are counted in *process CPU time* (all threads, so
  the dashboard's watcher thread counts against the wrapper): on a machine that other jobs share, wall-clock times
  swing by 2x between runs and say more about the neighbours than about the code; the wall-clock ratio is printed
  as context. Runs go in A B B A order (an even number of pairs, so neither side gets the warmer second slot more
  often: later runs in a process are faster); the ratio is of the medians. Torch runs one thread.
- rl/ppo_steps_to_475, rl/dqn_steps_to_475: environment steps at the first periodic evaluation (every 2,500 steps,
  10 deterministic episodes) whose mean return reaches CartPole-v1's threshold of 475, with `train`'s defaults and
  `target_reward=475`; the median over seeds 0, 1, 2 (each seed's figure is printed too)."""
import os, statistics, sys, tempfile, time
from pathlib import Path
os.environ.setdefault("ALIGNKIT_QUIET", "1")

PAIRS = int(os.environ.get("BENCH_RL_PAIRS", "4"))
SEEDS = (0, 1, 2)
FPS_STEPS = {"PPO": 20_000, "DQN": 6_000}     # DQN: 1,000 warm-up steps, then 128 gradient steps every 256

def raw_fps(algo, steps, seed):
    "Steps per second of SB3's own learn() with the zoo hyperparameters that alignkit.rl.train uses."
    import alignkit.rl as rl
    from alignkit.rl.sb3 import _schedule
    from stable_baselines3.common.env_util import make_vec_env
    hp = rl.defaults("CartPole-v1", algo)
    n_envs = hp.pop("n_envs", 1); hp.pop("n_timesteps", None)
    hp = {k: _schedule(v) for k, v in hp.items()}
    model = rl.algo_class(algo)("MlpPolicy", make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed), seed=seed, device="cpu", verbose=0, **hp)
    t0, c0 = time.perf_counter(), time.process_time()
    model.learn(steps)
    return model.num_timesteps/(time.process_time() - c0), model.num_timesteps/(time.perf_counter() - t0)

def wrapped_fps(algo, steps, seed, run_dir):
    "Steps per second of alignkit.rl.train (background thread, run log, live headless dashboard) at the same settings."
    import alignkit.rl as rl
    from alignkit.dashboard import Dashboard
    agent = rl.train("CartPole-v1", algo, steps, seed=seed, output_dir=run_dir, eval_freq=0, checkpoint_freq=0, background=True, dashboard=False)
    c0 = time.process_time()                       # the learner thread has just started; the model is built
    dash = Dashboard(agent.log, on_stop=agent.stop).watch()
    agent.wait()
    cpu = time.process_time() - c0                 # learn + the watcher thread + saving agent.zip at the end
    dash.close()
    assert dash.state.step >= steps - 8 and dash.redraws >= 1, dash.state
    return agent.model.num_timesteps/cpu, agent.fps

def fps_ratio(algo, root):
    import torch
    torch.set_num_threads(1)
    steps = FPS_STEPS[algo]
    wrapped_fps(algo, 2000, 0, root/f"warm-{algo}"); raw_fps(algo, 2000, 0)     # imports, plotly's first figure
    fps = {"raw": [], "alignkit": []}
    for i in range(PAIRS):
        for arm in (("raw", "alignkit") if i % 2 == 0 else ("alignkit", "raw")):
            fps[arm].append(raw_fps(algo, steps, i) if arm == "raw" else wrapped_fps(algo, steps, i, root/f"{algo}-{i}"))
    med = {arm: [statistics.median(r[k] for r in runs) for k in (0, 1)] for arm, runs in fps.items()}
    (raw, raw_wall), (wrapped, wrapped_wall) = med["raw"], med["alignkit"]
    print(f"rl/{algo.lower()}_fps_ratio: {wrapped/raw:.3f} (goal >= 0.97; CartPole-v1, {steps:,} steps, zoo settings, {PAIRS} runs "
          f"each: median {wrapped:,.0f} vs {raw:,.0f} steps per CPU-second through train() with a live dashboard vs bare SB3 "
          f"learn(); wall-clock ratio {wrapped_wall/raw_wall:.3f}, {wrapped_wall:,.0f} vs {raw_wall:,.0f} steps/s)", flush=True)

def steps_to_solve(algo, root):
    import alignkit.rl as rl
    got = []
    for s in SEEDS:
        agent = rl.train("CartPole-v1", algo, seed=s, output_dir=root/f"solve-{algo}-{s}", eval_freq=2500, n_eval_episodes=10,
                         target_reward=475, checkpoint_freq=0, dashboard=False)
        got.append(agent.solved_at)
    known = [g for g in got if g is not None]
    med = statistics.median(known) if len(known) == len(got) else None
    print(f"rl/{algo.lower()}_steps_to_475: {med if med is None else f'{med:,.0f}'} (goal: solved within the zoo's "
          f"{rl.defaults('CartPole-v1', algo)['n_timesteps']:,} steps; median over seeds {SEEDS}: "
          f"{', '.join('not solved' if g is None else f'{g:,}' for g in got)}; evaluation every 2,500 steps)", flush=True)

def main():
    with tempfile.TemporaryDirectory(prefix="bench-rl-") as d:
        root = Path(d)
        for algo in ("PPO", "DQN"): fps_ratio(algo, root)
        for algo in ("PPO", "DQN"): steps_to_solve(algo, root)

if __name__ == "__main__": main()
