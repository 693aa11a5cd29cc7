"""The trainer's and evaluator's input errors that `wukong` reports as one line (exit status 2)."""

from train.checkpoint import CheckpointError
from train.data import DataError
from train.evaluate import EvalInputError
from train.lit import LockImageError
from train.loop import TrainError
from train.model import ModelError
from train.shardspec import ShardSpecError
from train.tokenizer import TokenizerError

USAGE_ERRORS = (CheckpointError, DataError, EvalInputError, LockImageError, TrainError, ModelError,
                ShardSpecError, TokenizerError)
