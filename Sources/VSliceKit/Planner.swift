import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

extension Plan {
    /// The plan for `source`: with `--split scene` its scene changes are found first (a decode of the whole
    /// video at a small size).
    /// With `filter` (the `--vf` graph's measured timing), segments are cut by time, output kept from `from`.
    /// With `processor` (what the `--process` program puts out), segments are cut by time too.
    /// The default plan measures first what an element costs (`ElementCost.measure`; with `workers`, segments run
    /// as `vslice segment` processes, whose start counts too).
    public static func make(source: String, index: VideoIndex, settings: TranscodeSettings,
                            expect: FileIdentity? = nil, filter: FilterTiming? = nil, from: Int64? = nil,
                            processor: ProcessorOutput? = nil, workers: Bool = false) throws(VSliceError) -> Plan {
        let scenes = settings.split == .scene
            ? try SceneDetect.changes(path: source, videoStream: index.streamIndex, expect: expect) : []
        // A failed measurement leaves the encoder's rule of thumb; the segments will say what is wrong.
        let cost = !measuresElementCost(settings) || index.pts.count < 2 ? nil
            : ElementCost.given() ?? (try? ElementCost.measure(source: source, index: index, settings: settings, expect: expect,
                                                                workerProcess: workers))
        var plan = filter.map { Plan(index: index, settings: settings, filter: $0, from: from, scenes: scenes, cost: cost) }
            ?? Plan(index: index, settings: settings, scenes: scenes, cost: cost)
        if let processor { plan.process(with: processor, index: index) }
        return plan
    }
}

extension Plan {
    /// The plan a run makes for this source and these settings: the one planning path of `transcode`, `batch`,
    /// `resume` (for a task not planned yet) and `plan`. Its HDR metadata is kept for every segment's encoder.
    static func forRun(source: Transcoder.Inspection, settings: TranscodeSettings, workers: Bool) throws(VSliceError) -> Plan {
        let timing = source.extras.filterTiming
        var p = try Plan.make(source: source.input, index: source.video, settings: settings, expect: source.identity,
                              filter: timing, from: timing?.offset,
                              processor: source.extras.processor, workers: workers)
        p.hdr = source.extras.hdr
        return p
    }
}
