from experiments.runtime import entry

entry.run("lego")
