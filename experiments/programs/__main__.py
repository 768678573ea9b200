from experiments.runtime import entry

entry.run("programs")
