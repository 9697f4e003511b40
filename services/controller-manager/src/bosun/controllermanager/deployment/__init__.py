"""The Deployment controller: rollouts over ReplicaSets, one per pod template."""
