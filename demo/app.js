<!-- placeholder: the demo page is being written -->
