"""The experiment grid on a cluster: its points (a study preset or your own matrix of `-S` overrides), the
resources each asks for (from the memory plan), the Slurm backend (array jobs, their ledger, status and
collection) and a one-node Slurm on this machine for trying it. A consumer room: no stage imports it."""
