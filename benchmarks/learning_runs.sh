#!/usr/bin/env bash
# The learning-curve runs of the README's "Learning results" (issue 11 §3), as run on 7 Dec on 2 CPU cores.
# Each line is a `seqmarl sweep` (local process pool; add `--backend ray` for a Ray cluster); running a line again
# resumes it. On a GPU machine add `device=cuda` to any line. Reports: the `seqmarl report` lines at the end.
set -euo pipefail
OUT=${OUT:-sweeps}

# MaMuJoCo HalfCheetah 2x3 to 1e6 env steps, 3 seeds: HAPPO (HARL's tuned config), MAPPO (the same values),
# MAT (the MAT repository's MuJoCo script). Greedy evaluation: 10 episodes every 25 updates.
seqmarl sweep --out "$OUT/hc_mat_happo" --workers 2 config=mat-halfcheetah-2x3,happo-halfcheetah-2x3 seed=0:3 \
    total_steps=1000000 eval_episodes=10 tensorboard=false
seqmarl sweep --out "$OUT/hc_mappo" --workers 2 config=happo-halfcheetah-2x3 algo=mappo seed=0:3 \
    total_steps=1000000 eval_episodes=10 tensorboard=false

# SMAX 3m, 3 seeds: HAPPO and MAPPO (HARL's default values, feed-forward) to 1e6 steps; MAT (the MAT repository's
# SMAC script, official tokens) to 5e5 steps with observations padded to 8 allies / 8 enemies, so that the same
# models are evaluated zero-shot on 5m_vs_6m and 8m (benchmarks/generalisation.py --from-runs); MAT-Dec likewise, 1 seed.
seqmarl sweep --out "$OUT/smax3m_happo" --workers 1 config=happo-smax-3m seed=0:3 total_steps=1000000 tensorboard=false
seqmarl sweep --out "$OUT/smax3m_mappo" --workers 1 config=happo-smax-3m algo=mappo algo.share_param=true seed=0:3 \
    total_steps=1000000 tensorboard=false
seqmarl sweep --out "$OUT/smax3m_mat5" --workers 1 config=mat-smax-3m 'env.pad_units=(8,8)' seed=0:3 \
    total_steps=500000 tensorboard=false
seqmarl sweep --out "$OUT/smax3m_matdec5" --workers 1 config=mat-smax-3m algo=mat_dec algo.mat_token_id=true \
    'env.pad_units=(8,8)' seed=0:1 total_steps=500000 tensorboard=false

# SMAX 3m, JaxMARL's recurrent MAPPO values (mappo-smax-3m), 2e6 steps, 1 seed (7 Dec, second session).
seqmarl sweep --out "$OUT/smax3m_mappo_rnn" --workers 1 config=mappo-smax-3m seed=0:1 total_steps=2000000 tensorboard=false

# SMAX 3m to 2e6 steps, 3 seeds, greedy evaluation of 32 battles every 1e5 steps (7 Dec, third session): MAPPO with HARL's default
# values and with the MAPPO paper's SMAC value for easy maps, ppo_epoch 15 (Yu et al. 2022); 2s3z with ppo_epoch 15:
# MAPPO to 2e6, HAPPO to 1e6; smacv2_5_units (MAPPO, ppo_epoch 15) to 1e6; 3 seeds each.
seqmarl sweep --out "$OUT/smax3m2e6_mappo" --workers 2 config=happo-smax-3m algo=mappo algo.share_param=true seed=0:3 \
    total_steps=2000000 eval_episodes=32 tensorboard=false
seqmarl sweep --out "$OUT/smax3m_ep15_mappo" --workers 2 config=happo-smax-3m algo=mappo algo.share_param=true \
    algo.ppo_epoch=15 seed=0:3 total_steps=2000000 eval_episodes=32 tensorboard=false
seqmarl sweep --out "$OUT/smax2s3z_ep15_mappo" --workers 2 config=happo-smax-3m env=smax/2s3z algo=mappo \
    algo.share_param=true algo.ppo_epoch=15 seed=0:3 total_steps=2000000 eval_episodes=32 tensorboard=false
seqmarl sweep --out "$OUT/smax2s3z_ep15_happo" --workers 2 config=happo-smax-3m env=smax/2s3z algo.ppo_epoch=15 \
    seed=0:3 total_steps=1000000 eval_episodes=32 tensorboard=false
seqmarl sweep --out "$OUT/smacv2_5_ep15_mappo" --workers 2 config=happo-smax-3m env=smax/smacv2_5_units algo=mappo \
    algo.share_param=true algo.ppo_epoch=15 seed=0:3 total_steps=1000000 eval_episodes=32 tensorboard=false
# 7 Dec, fourth session: MAT on 2s3z (the MAT repository's SMAC script values, mat-smax-3m) to 1e6, greedy evaluation
# every 32 updates (102,400 steps); MAPPO on 3m with ppo_epoch 15 and linearly decaying step sizes to 2e6.
seqmarl sweep --out "$OUT/smax2s3z_mat" --workers 2 config=mat-smax-3m env=smax/2s3z seed=0:3 total_steps=1000000 \
    eval_interval=32 eval_episodes=32 tensorboard=false
seqmarl sweep --out "$OUT/smax3m_ep15_lrdecay_mappo" --workers 1 config=happo-smax-3m algo=mappo algo.share_param=true \
    algo.ppo_epoch=15 algo.linear_lr_decay=true seed=0:3 total_steps=2000000 eval_episodes=32 tensorboard=false
seqmarl sweep --out "$OUT/smax3m_ep15_lrdecay_happo" --workers 3 config=happo-smax-3m algo.ppo_epoch=15 \
    algo.linear_lr_decay=true seed=0:3 total_steps=2000000 eval_episodes=32 tensorboard=false
# 8 Dec: MAT on 3m to 2e6 (the MAT repository's SMAC script values, evaluation every 25 updates = 80,000 steps);
# MAPPO with the MAPPO paper's epochs for the critic too (its code runs ppo_epoch passes over actor AND critic)
seqmarl sweep --out "$OUT/smax3m_mat" --workers 2 config=mat-smax-3m seed=0:3 total_steps=2000000 eval_episodes=32 \
    tensorboard=false
seqmarl sweep --out "$OUT/smax3m_ep15c15_lrdecay_mappo" --workers 1 config=happo-smax-3m algo=mappo \
    algo.share_param=true algo.ppo_epoch=15 algo.critic_epoch=15 algo.linear_lr_decay=true seed=0:3 \
    total_steps=2000000 eval_episodes=32 tensorboard=false

# MPE simple_spread (HARL's tuned HAPPO config; MAPPO with the same values and a shared actor, as HARL's MAPPO) and
# VMAS balance (BenchMARL's MAPPO values, training return; evaluation off to save CPU), 3 seeds each.
seqmarl sweep --out "$OUT/mpe_spread_happo" --workers 1 config=happo-mpe-simple-spread seed=0:3 total_steps=500000 \
    tensorboard=false
seqmarl sweep --out "$OUT/mpe_spread_mappo" --workers 1 config=happo-mpe-simple-spread algo=mappo algo.share_param=true \
    seed=0:3 total_steps=500000 tensorboard=false
# the same HAPPO runs on jaxmarl's JAX MPE (jaxmarl_mpe/simple_spread, the same task; 7 Dec, fourth session)
seqmarl sweep --out "$OUT/jaxmpe_spread_happo" --workers 1 config=happo-mpe-simple-spread env=jaxmarl_mpe/simple_spread \
    seed=0:3 total_steps=500000 tensorboard=false
seqmarl sweep --out "$OUT/vmas_balance" --workers 1 config=mappo-vmas-balance seed=0:3 total_steps=1200000 \
    eval_interval=0 tensorboard=false
seqmarl sweep --out "$OUT/vmas_balance_happo" --workers 1 config=mappo-vmas-balance algo=happo \
    algo.share_param=false seed=0:3 total_steps=1200000 eval_interval=0 tensorboard=false

# Reports (rliable IQM with stratified-bootstrap CIs, curves, marl-eval JSON).
seqmarl report "$OUT/hc_mat_happo" "$OUT/hc_mappo" --out "$OUT/report_halfcheetah"
seqmarl report "$OUT/smax3m_happo" "$OUT/smax3m_mappo" "$OUT/smax3m_mat5" --metric win_rate --out "$OUT/report_smax3m"
seqmarl report "$OUT/smax3m_mappo_rnn" --metric win_rate --out "$OUT/report_smax3m_rnn"
seqmarl report "$OUT/smax3m2e6_mappo" "$OUT/smax3m_ep15_mappo" --metric eval_win_rate_greedy --final-window 5 \
    --out "$OUT/report_smax3m_2e6"
seqmarl report "$OUT/smax2s3z_ep15_mappo" "$OUT/smax2s3z_ep15_happo" --metric eval_win_rate_greedy --final-window 5 \
    --out "$OUT/report_smax2s3z"
seqmarl report "$OUT/smacv2_5_ep15_mappo" --metric eval_win_rate_greedy --final-window 5 --out "$OUT/report_smacv2_5"
seqmarl report "$OUT/mpe_spread_happo" "$OUT/mpe_spread_mappo" --out "$OUT/report_mpe_spread"
seqmarl report "$OUT/mpe_spread_happo" "$OUT/jaxmpe_spread_happo" --out "$OUT/report_mpe_spread_jax"
seqmarl report "$OUT/smax2s3z_mat" --metric eval_win_rate_greedy --final-window 3 --out "$OUT/report_smax2s3z_mat"
seqmarl report "$OUT/smax3m_ep15_mappo" "$OUT/smax3m_ep15_lrdecay_mappo" --metric eval_win_rate_greedy \
    --final-window 5 --out "$OUT/report_smax3m_lrdecay"
seqmarl report "$OUT/smax3m_ep15_lrdecay_mappo" "$OUT/smax3m_ep15_lrdecay_happo" --metric eval_win_rate_greedy \
    --final-window 5 --out "$OUT/report_smax3m_lrdecay_both"
seqmarl report "$OUT/vmas_balance" "$OUT/vmas_balance_happo" --out "$OUT/report_vmas_balance"
# the reference curve: JaxMARL's own recurrent MAPPO on SMAX 3m (a separate virtualenv with jax/jaxmarl/flax/optax/
# distrax/hydra-core; see the script's docstring)
# python benchmarks/jaxmarl_reference.py --jaxmarl PATH_TO_JAXMARL --map 3m --steps 2e6 --seeds 0,1,2
# where the 3m losses come from: every start state replayed 20 times under other in-battle randomness
python benchmarks/smax_start_states.py "$OUT"/smax3m_ep15_lrdecay_mappo/runs/* "$OUT"/smax3m_ep15_lrdecay_happo/runs/* \
    --starts 200 --replays 20 --out benchmarks/results/smax_start_states_lrdecay.json
# zero-shot evaluation of the SMAX MAT/MAT-Dec models on other unit counts, and of the HalfCheetah models with an
# agent's actuators broken
python benchmarks/generalisation.py --from-runs "$OUT"/smax3m_mat5/runs/* "$OUT"/smax3m_matdec5/runs/* \
    "$OUT"/smax3m_happo/runs/* --episodes 32 --out benchmarks/results/generalisation_smax.json
python benchmarks/generalisation.py --from-runs "$OUT"/hc_mat_happo/runs/* "$OUT"/hc_mappo/runs/* --episodes 10 \
    --out benchmarks/results/generalisation_halfcheetah.json
# HARL's published HalfCheetah 2x3 curve (digitised from its figure) beside the HalfCheetah runs above
python benchmarks/harl_published_curve.py --harl PATH_TO_HARL --runs "$OUT/hc_mat_happo" "$OUT/hc_mappo"
