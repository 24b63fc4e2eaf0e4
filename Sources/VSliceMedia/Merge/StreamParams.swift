import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// The codec parameters of an encoded stream, in a form that can be stored in a segment file and put back
/// into a muxer's `AVCodecParameters`. Produced from the encoder that wrote the packets.
public struct StreamParams: Codable, Sendable, Equatable {
    package var mediaType: Int32
    package var codecID: UInt32
    package var extradata: Data
    package var format: Int32
    package var bitRate: Int64
    package var profile: Int32
    package var level: Int32
    package var width: Int32
    package var height: Int32
    package var sampleAspect: Ratio
    package var fieldOrder: UInt32
    package var colorRange: UInt32
    package var colorPrimaries: UInt32
    package var colorTransfer: UInt32
    package var colorSpace: UInt32
    package var chromaLocation: UInt32
    package var videoDelay: Int32
    package var sampleRate: Int32
    package var channels: Int32
    package var channelOrder: UInt32
    package var channelMask: UInt64
    package var frameSize: Int32
    package var initialPadding: Int32
    package var trailingPadding: Int32
    /// The time base of the packets stored with these parameters.
    package var timeBase: Ratio

    package init(encoder: UnsafeMutablePointer<AVCodecContext>) throws(VSliceError) {
        guard let par = avcodec_parameters_alloc() else {
            throw VSliceError(.processing, "copy encoder parameters", reason: "out of memory")
        }
        var p: UnsafeMutablePointer<AVCodecParameters>? = par
        defer { avcodec_parameters_free(&p) }
        try ffCheck(avcodec_parameters_from_context(par, encoder), "copy encoder parameters")
        self.init(codecpar: par, timeBase: encoder.pointee.time_base)
    }

    /// The parameters of a stream as it is (for stream copy), its packets in `timeBase`.
    package init(codecpar par: UnsafeMutablePointer<AVCodecParameters>, timeBase tb: AVRational) {
        let c = par.pointee
        mediaType = c.codec_type.rawValue
        codecID = c.codec_id.rawValue
        extradata = c.extradata.map { Data(bytes: $0, count: Int(c.extradata_size)) } ?? Data()
        format = c.format
        bitRate = c.bit_rate
        profile = c.profile
        level = c.level
        width = c.width
        height = c.height
        sampleAspect = Ratio(c.sample_aspect_ratio)
        fieldOrder = c.field_order.rawValue
        colorRange = c.color_range.rawValue
        colorPrimaries = c.color_primaries.rawValue
        colorTransfer = c.color_trc.rawValue
        colorSpace = c.color_space.rawValue
        chromaLocation = c.chroma_location.rawValue
        videoDelay = c.video_delay
        sampleRate = c.sample_rate
        channels = c.ch_layout.nb_channels
        channelOrder = c.ch_layout.order.rawValue
        channelMask = c.ch_layout.order == AV_CHANNEL_ORDER_NATIVE ? c.ch_layout.u.mask : 0
        frameSize = c.frame_size
        initialPadding = c.initial_padding
        trailingPadding = c.trailing_padding
        timeBase = Ratio(tb)
    }

    /// Writes these parameters into a muxer stream's `codecpar`.
    package func apply(to par: UnsafeMutablePointer<AVCodecParameters>) throws(VSliceError) {
        par.pointee.codec_type = AVMediaType(rawValue: mediaType)
        par.pointee.codec_id = AVCodecID(rawValue: codecID)
        par.pointee.codec_tag = 0
        av_freep(&par.pointee.extradata)
        par.pointee.extradata_size = 0
        if !extradata.isEmpty {
            guard let buf = av_mallocz(extradata.count + Int(AV_INPUT_BUFFER_PADDING_SIZE)) else {
                throw VSliceError(.processing, "copy extradata", reason: "out of memory")
            }
            extradata.copyBytes(to: buf.assumingMemoryBound(to: UInt8.self), count: extradata.count)
            par.pointee.extradata = buf.assumingMemoryBound(to: UInt8.self)
            par.pointee.extradata_size = Int32(extradata.count)
        }
        par.pointee.format = format
        par.pointee.bit_rate = bitRate
        par.pointee.profile = profile
        par.pointee.level = level
        par.pointee.width = width
        par.pointee.height = height
        par.pointee.sample_aspect_ratio = sampleAspect.av
        par.pointee.field_order = AVFieldOrder(rawValue: fieldOrder)
        par.pointee.color_range = AVColorRange(rawValue: colorRange)
        par.pointee.color_primaries = AVColorPrimaries(rawValue: colorPrimaries)
        par.pointee.color_trc = AVColorTransferCharacteristic(rawValue: colorTransfer)
        par.pointee.color_space = AVColorSpace(rawValue: colorSpace)
        par.pointee.chroma_location = AVChromaLocation(rawValue: chromaLocation)
        par.pointee.video_delay = videoDelay
        par.pointee.sample_rate = sampleRate
        av_channel_layout_uninit(&par.pointee.ch_layout)
        if mediaType == AVMEDIA_TYPE_AUDIO.rawValue {
            if channelOrder == AV_CHANNEL_ORDER_NATIVE.rawValue {
                try ffCheck(av_channel_layout_from_mask(&par.pointee.ch_layout, channelMask), "set channel layout")
            } else {
                av_channel_layout_default(&par.pointee.ch_layout, channels)
            }
        }
        par.pointee.frame_size = frameSize
        par.pointee.initial_padding = initialPadding
        par.pointee.trailing_padding = trailingPadding
    }
}
