"""AMI adapters: the wire codec, the panoramisk client and the project's
own AMI server (replay of recordings)."""
