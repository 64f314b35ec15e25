"""a3cs — Automated Agent-Accelerator Co-Search (A3C-S) as an NNI plugin.

Data flow (each package imports only from packages above it in this list):

    errors, utils          shared error type and small helpers
    hardware.spec          Timeloop/Accelergy YAML  ->  typed specification objects
    hardware.energy        built-in per-action energy / area tables (Accelergy-style ERT/ART)
    hardware.model         analytical Timeloop-compatible model (fixed mapping -> stats)
    hardware.mapper        mapping search over the model
    hardware.workload      PyTorch modules -> Timeloop problems
    hardware.dnn_cost      whole-DNN costing (workload x accelerator x mapper)
    hardware.space         parameterised accelerator design spaces (templates)
    hardware.surrogate     differentiable cost model fitted on mapper labels
    agents                 NNI model space of DRL agents + fixed zoo agents
    rl                     Atari environments, PPO / A2C, distillation, evaluation
    strategy               the A3C-S NNI one-shot strategy and co-search driver
    cli                    the `a3cs` command line
"""

__version__ = "0.1.0"
