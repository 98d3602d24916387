"""The training settings of the stellar Transformer (the ``train`` block of the configuration, and
``mass_age.train`` over it): their one home, with each default and what it does. Free of torch, so
that the workflow reads the defaults when it parses (``pipeline.configuration``)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..settings import from_dict


@dataclass(frozen=True)
class Sampling:
    """What the token sampler (``model.data.TokenSampler``) draws: the fields of ``TrainConfig`` it
    reads, by the same names (``TrainConfig.sampling``), plus whether it shuffles."""

    batch_size: int
    seed: int
    held_out: tuple
    min_inputs: int
    targets_per_star: int
    target_weights: dict | None
    identity_fraction: float
    label_input_fraction: float
    label_input_targets: tuple
    label_inputs_held_out: bool | float
    stars_with: tuple
    resident: str
    pool_batches: int
    shuffle: bool = True


@dataclass
class TrainConfig:
    epochs_per_cycle: int = 16  # epochs of one cosine cycle of the learning rate
    cycles: int = 2  # cycles, each ending in a warm restart at `lr` (the paper's schedule)
    batch_size: int = 512  # stars per step
    lr: float = 1e-3  # AdamW's peak learning rate
    lr_min: float = 1e-6  # the learning rate at the end of each cycle
    weight_decay: float = 1e-4  # AdamW's decoupled weight decay
    grad_clip: float = 1.0  # the gradients' global norm is clipped to this
    seed: int = 0  # the seed of the weights' initialisation and of every draw of the sampler
    held_out: tuple = ("bprp", "jk")  # tokens never requested in training (section 7.2; Fig. 14 asks for them)
    min_inputs: int = 5  # stars with fewer input tokens are not trained on
    targets_per_star: int = 1  # the paper asks one question per star per epoch; more reuse each encoding
    target_weights: dict | None = None  # relative odds of a token being the target (default 1 each)
    identity_fraction: float = 1.0  # share of stars whose targets may also be inputs (the paper: 1.0)
    label_input_fraction: float = 0.0  # share of stars with only non-XP inputs, asked for XP and g_fakemag (the paper: 0)
    label_input_targets: tuple = ()  # tokens label-only stars are also asked for, besides XP and g_fakemag
    label_inputs_held_out: bool | float = False  # label-only stars may also be given the held-out outputs (bprp, jk) as inputs
    # (true: all of them; a number: that share of them)
    loss_beta: float = 0.0  # 0: eq. 11; > 0 weights each target's loss by its variance^beta (beta-NLL, a departure)
    stars_with: tuple = ()  # train and validate only on stars having at least one of these tokens (empty: all stars)
    checkpoint_every: int = 5  # epochs between resumable checkpoints
    num_workers: int = 0  # DataLoader workers reading the store (resident: stream only)
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 autocast on CUDA, float32 on the CPU) | float32 | bfloat16
    compile: str = "auto"  # torch.compile the network: auto (on CUDA), on, off
    resident: str = "auto"  # the split held on the device (memory), read from the store (stream), or auto by size
    length_groups: int | str = "auto"  # run each batch as this many groups of similar input counts, each cut to
    # its longest row: the same gradient, less padding (auto: 8 on the CPU, 1 on CUDA, where one pass per op pays)
    pool_batches: int = 8  # batches per sampling pool (one sampling pass on the device)
    threads: int = 0  # CPU threads for torch (0: leave torch's default); with processes > 1, shared among the ranks
    processes: int = 1  # data-parallel ranks (DDP through torchrun: one GPU each on CUDA, gloo on the CPU)

    @property
    def epochs(self):
        return self.epochs_per_cycle * self.cycles

    def schedule(self):
        """The engine's schedule: cosine annealing with warm restarts every ``epochs_per_cycle``."""
        from ..engine import Schedule

        return Schedule(
            epochs=self.epochs,
            lr=self.lr,
            lr_min=self.lr_min,
            cycle_epochs=self.epochs_per_cycle,
            weight_decay=self.weight_decay,
            grad_clip=self.grad_clip,
            checkpoint_every=self.checkpoint_every,
        )

    def sampling(self, validation: bool = False) -> Sampling:
        """The sampler's settings: the training's, or (``validation``) the fixed validation sample's,
        which asks the paper's plain question (one target of uniform odds per star, every star
        with spectra as inputs) from its own seed, unshuffled. DataLoader workers read the store."""
        own = {f.name: getattr(self, f.name) for f in fields(Sampling) if hasattr(self, f.name)}
        sampling = Sampling(**own | {"resident": "stream" if self.num_workers else self.resident})
        if not validation:
            return sampling
        plain = dict(targets_per_star=1, target_weights=None, identity_fraction=1.0, label_input_fraction=0.0)
        return replace(sampling, seed=self.seed + 1, shuffle=False, **plain)

    @classmethod
    def from_dict(cls, d):
        return from_dict(cls, d, "train")
