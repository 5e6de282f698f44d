"""The chaos soak of issue 14: the real local stack on a stepped clock, under seeded faults (`make soak`)."""
