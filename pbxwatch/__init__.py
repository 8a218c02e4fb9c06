"""pbxwatch: telephony guideline compliance from an Asterisk AMI stream."""

__version__ = "0.1.0"
