"""Stable reason codes of rejected rows (other tools read them: never rename one)."""

NO_CAPTION = "no_caption"            # caption missing, null or empty after normalisation
MALFORMED_ROW = "malformed_row"      # the input row could not be parsed (csv/jsonl)
ERROR = "error"                      # a rule raised on this row (detail says which); the row is kept aside
BOILERPLATE = "boilerplate"
NO_CHINESE = "no_chinese"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
SENSITIVE = "sensitive"
TOO_FREQUENT = "too_frequent"
IMAGE_TOO_SMALL = "image_too_small"
IMAGE_BAD_ASPECT = "image_bad_aspect"
IMAGE_TOO_MANY_PIXELS = "image_too_many_pixels"
IMAGE_UNDECODABLE = "image_undecodable"

ALL = (NO_CAPTION, MALFORMED_ROW, ERROR, BOILERPLATE, NO_CHINESE, TOO_SHORT, TOO_LONG, SENSITIVE,
       TOO_FREQUENT, IMAGE_TOO_SMALL, IMAGE_BAD_ASPECT, IMAGE_TOO_MANY_PIXELS, IMAGE_UNDECODABLE)

# Transformations (counted, never drops).
CONVERTED = "converted_t2s"
NORMALIZED = "normalized"
URL_REMOVED = "url_removed"
BOILERPLATE_CUT = "boilerplate_cut"
MASKED_NAME = "masked_name"
MASKED_PHONE = "masked_phone"
MASKED_EMAIL = "masked_email"
MASKED_ID_NUMBER = "masked_id_number"
