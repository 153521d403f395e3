"""The operator's Helm chart as a release artifact: lint, render, package, push (Helm's Go SDK)."""
