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
    /// as `vslice segment` processes, whose start counts too), and counts the processor's cost (`processorCost`,
    /// timed by the check before any work; `VSLICE_PROCESSOR_COST` instead). `VSLICE_ELEMENT_COST` fixes the whole
    /// element's cost: the processor's timing is then left out, unless `VSLICE_PROCESSOR_COST` gives it too.
    public static func make(source: String, index: VideoIndex, settings: TranscodeSettings,
                            expect: FileIdentity? = nil, filter: FilterTiming? = nil, from: Int64? = nil,
                            processor: ProcessorOutput? = nil, processorCost: ProcessorCost? = nil,
                            workers: Bool = false) throws(VSliceError) -> Plan {
        let scenes = settings.split == .scene
            ? try SceneDetect.changes(path: source, videoStream: index.streamIndex, expect: expect) : []
        // A failed measurement leaves the encoder's rule of thumb; the segments will say what is wrong.
        var cost = !measuresElementCost(settings) || index.pts.count < 2 ? nil
            : ElementCost.given() ?? (try? ElementCost.measure(source: source, index: index, settings: settings, expect: expect,
                                                                workerProcess: workers))
        if cost != nil, settings.process != nil {
            var p = ProcessorCost.given() ?? (ElementCost.given() == nil ? processorCost : nil)
            p?.persistent = settings.process?.isPersistent ?? false
            cost?.processor = p
        }
        var plan = filter.map { Plan(index: index, settings: settings, filter: $0, from: from, scenes: scenes, cost: cost) }
            ?? Plan(index: index, settings: settings, scenes: scenes, cost: cost)
        if let processor { plan.process(with: processor, index: index) }
        plan.elementCost = cost
        plan.context = try ContextPlan.make(settings.context, segments: plan.segments.count, frameCount: index.pts.count)
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
                              processor: source.extras.processor, processorCost: source.extras.processorCost, workers: workers)
        p.hdr = source.extras.hdr
        return p
    }
}
