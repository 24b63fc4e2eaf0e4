// The C side of vslice: FFmpeg's headers plus the few things Swift cannot import from them.
// Every function here exists because the FFmpeg original is a function-like macro or a compound
// literal, which the Swift importer drops. Nothing else belongs in this file.
#ifndef VSLICE_CFFMPEG_SHIM_H
#define VSLICE_CFFMPEG_SHIM_H

#include <errno.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/adler32.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/mastering_display_metadata.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/sha.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>

// AVERROR(e) is a function-like macro: negates a POSIX errno into FFmpeg's error space.
static inline int vs_averror(int e) { return AVERROR(e); }
// AVERROR_EOF is built with the FFERRTAG macro, which Swift does not import.
static inline int vs_averror_eof(void) { return AVERROR_EOF; }
// AVERROR(EAGAIN): "send more input / receive output first" in the send/receive API.
static inline int vs_averror_eagain(void) { return AVERROR(EAGAIN); }
// AVERROR_EXIT is FFERRTAG-based: returned when our interrupt callback stops a blocking call.
static inline int vs_averror_exit(void) { return AVERROR_EXIT; }
// AVERROR_INVALIDDATA is FFERRTAG-based: used to report corrupt input in our own checks.
static inline int vs_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
// AVERROR_EXPERIMENTAL is a negated MKTAG: an encoder FFmpeg marks experimental, refused unless strict is lowered.
static inline int vs_averror_experimental(void) { return AVERROR_EXPERIMENTAL; }
// AV_NOPTS_VALUE is a cast expression on UINT64_C, which the importer does not evaluate.
static inline int64_t vs_nopts_value(void) { return AV_NOPTS_VALUE; }
// av_err2str is a macro around a compound-literal buffer; this fills a caller's buffer instead.
static inline const char *vs_err2str(int err, char *buf, size_t size) {
    av_strerror(err, buf, size);
    return buf;
}

#endif
