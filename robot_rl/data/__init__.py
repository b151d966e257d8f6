"""Recorded robot data: the LeRobot v3 dataset writer and reader."""
