"""The built-in PBX simulator: Asterisk 22 AMI event sequences for a working day."""
