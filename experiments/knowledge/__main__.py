from experiments.knowledge import stages
from experiments.runtime import entry

entry.run("knowledge", train_fn=stages.train_and_evaluate)
