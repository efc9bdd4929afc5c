"""A plain PyTorch script (an MLP on scikit-learn's bundled 8x8 digits; no download) that
adopts the Ladder SDK in a few lines: config, metrics, checkpoints, SIGTERM, result.

Outside Ladder:  python train.py --lr=0.01 --hidden=64    (offline: ./ladder-output/)
In a sweep:      see ../digits.yaml (command: [python, train.py, "{args}"])
"""
import argparse

import torch
from sklearn.datasets import load_digits

import ladder_jobs as ladder

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--hidden", type=int, default=64)
parser.add_argument("--steps", type=int, default=300)
parser.add_argument("--batch_size", type=int, default=64)
parser.add_argument("--checkpoint_every", type=int, default=50)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

run = ladder.init(config=vars(args))  # inside a sweep, the trial's config (LADDER_CONFIG) wins
cfg = run.config
torch.manual_seed(cfg["seed"])

digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target, dtype=torch.long)
order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1234))  # same split for all
val_idx, train_idx = order[:360], order[360:]

model = torch.nn.Sequential(torch.nn.Linear(64, cfg["hidden"]), torch.nn.ReLU(), torch.nn.Linear(cfg["hidden"], 10))
opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])

run.use_checkpoints(ladder.torch_checkpoints(run))
state = run.load_checkpoint()  # None on a first attempt
if state is not None:
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    torch.set_rng_state(state["rng"])


def snapshot():
    return {"model": model.state_dict(), "opt": opt.state_dict(), "rng": torch.get_rng_state()}


for step in range(run.start_step, cfg["steps"]):
    batch = train_idx[torch.randint(len(train_idx), (cfg["batch_size"],))]
    loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 10 == 0:
        run.log({"train_loss": loss.item()}, step=step)
    if run.should_stop():  # SIGTERM (preemption, cancel): checkpoint and exit 143 for a retry
        run.save_checkpoint(snapshot(), step)
        run.stop()
    if (step + 1) % cfg["checkpoint_every"] == 0:
        run.save_checkpoint(snapshot(), step)

with torch.no_grad():
    logits = model(x[val_idx])
    val_loss = torch.nn.functional.cross_entropy(logits, y[val_idx]).item()
    val_acc = (logits.argmax(1) == y[val_idx]).float().mean().item()
run.log({"val_loss": val_loss}, step=cfg["steps"])
run.finish({"val_loss": val_loss, "val_acc": val_acc, "params": sum(p.numel() for p in model.parameters())})
