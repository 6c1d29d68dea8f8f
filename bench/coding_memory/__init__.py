"""The data of the coding-memory benchmark (`bench/coding_memory.py`): authored sessions and questions.

`scenario.py` lists the sessions (one module per project says what happened in them); `questions.jsonl` holds
the questions an agent would ask later, with the words a good answer contains and the sessions that hold it.
"""
