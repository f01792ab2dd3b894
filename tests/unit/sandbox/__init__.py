"""Unit tests of the sandbox's pure logic."""
