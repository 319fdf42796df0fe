# Shared fixtures (receiver, octoprint_factory, outbound_guard, test_output) for
# every suite; registered here because pytest only accepts pytest_plugins in a
# top-level conftest.
pytest_plugins = ["tests.harness.fixtures"]
