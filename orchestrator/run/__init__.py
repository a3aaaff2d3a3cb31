"""`fedchem run` and `fedchem status`: the federated run as Substra compute plans.

`driver` composes the set-up (`setup`), each round (`rounds`) and the final evaluation (`evaluation`) around one
`context.ActiveRun`; `submit` submits a step and waits on its tasks' statuses (`waiting`); `plan` builds each
batch of task specs, `privacy` checks them before submission (the
operator's first line, not the security boundary: partners enforce their agreement on their own nodes), `backend`
talks to Substra, `remote` makes the clients of real nodes.
"""
