"""Camera capture: video files, RTSP/HTTP URLs and webcams → JPEG frame records in ``fs:frames:<camera>``."""
