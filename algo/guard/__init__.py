"""The partner-side guard: what a partner's own node trusts (its agreement, its state, cryptography), and the
rules its Substra functions enforce before they touch a secret (DESIGN.md section 1.1; README "Threat model").
"""
