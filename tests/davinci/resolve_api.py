"""The documented DaVinci Resolve scripting API, as method names per object.

Transcribed from Resolve's scripting README ("Last Updated: 24 Jul 2026", mirrored in
samuelgursky/davinci-resolve-mcp docs/reference/resolve_scripting_api.txt; see
../shared/notes/nle-integration.md).  Only the objects the EdiDub scripts can reach are listed,
each in full.  The Fusion UIManager names come from Blackmagic's Fusion scripting guide
(b3n0y/ResolveDevDoc docs/source/UI_intro.rst): they are used only where Resolve offers a UI.
"""

DOCUMENTED: dict[str, frozenset[str]] = {
    "Resolve": frozenset("""
        Fusion GetMediaStorage GetProjectManager OpenPage GetCurrentPage GetProductName GetVersion GetVersionString
        GetLayoutPresetList LoadLayoutPreset UpdateLayoutPreset ExportLayoutPreset DeleteLayoutPreset SaveLayoutPreset
        ImportLayoutPreset Quit ImportRenderPreset ExportRenderPreset GetBurnInPresetList DeleteBurnInPreset
        ImportBurnInPreset ExportBurnInPreset GetUserPreferencesPresetList LoadUserPreferencesPreset
        SaveUserPreferencesPreset DeleteUserPreferencesPreset ImportUserPreferencesPreset ExportUserPreferencesPreset
        GetKeyframeMode SetKeyframeMode GetFairlightPresets DisableBackgroundTasksForCurrentResolveSession
    """.split()),
    "ProjectManager": frozenset("""
        ArchiveProject CreateProject DeleteProject LoadProject GetCurrentProject SaveProject CloseProject CreateFolder
        DeleteFolder GetProjectListInCurrentFolder GetProjectAttributesInCurrentFolder GetFolderListInCurrentFolder
        GotoRootFolder GotoParentFolder GetCurrentFolder OpenFolder ImportProject ExportProject RestoreProject
        GetCurrentDatabase GetDatabaseList SetCurrentDatabase CreateCloudProject LoadCloudProject ImportCloudProject
        RestoreCloudProject
    """.split()),
    "Project": frozenset("""
        GetMediaPool GetTimelineCount GetTimelineByIndex GetCurrentTimeline SetCurrentTimeline GetGallery GetName SetName
        GetPresetList SetPreset AddRenderJob DeleteRenderJob DeleteAllRenderJobs GetRenderJobList GetRenderPresetList
        StartRendering StopRendering IsRenderingInProgress LoadRenderPreset SaveAsNewRenderPreset DeleteRenderPreset
        SetRenderSettings GetRenderJobStatus GetQuickExportRenderPresets RenderWithQuickExport GetSetting SetSetting
        GetRenderFormats GetRenderCodecs GetCurrentRenderFormatAndCodec SetCurrentRenderFormatAndCodec
        GetCurrentRenderMode SetCurrentRenderMode GetRenderResolutions RefreshLUTList GetUniqueId
        InsertAudioToCurrentTrackAtPlayhead LoadBurnInPreset ExportCurrentFrameAsStill GetColorGroupsList AddColorGroup
        DeleteColorGroup ApplyFairlightPresetToCurrentTimeline ResetIntellisearchAnalysis GenerateSpeech
    """.split()),
    "MediaPool": frozenset("""
        GetRootFolder AddSubFolder RefreshFolders CreateEmptyTimeline AppendToTimeline CreateTimelineFromClips
        ImportTimelineFromFile DeleteTimelines GetCurrentFolder SetCurrentFolder DeleteClips ImportFolderFromFile
        DeleteFolders MoveClips MoveFolders GetClipMatteList GetTimelineMatteList DeleteClipMattes RelinkClips UnlinkClips
        ImportMedia ExportMetadata GetUniqueId CreateStereoClip AutoSyncAudio GetSelectedClips SetSelectedClip
    """.split()),
    "Folder": frozenset("""
        GetClipList GetName GetSubFolderList GetIsFolderStale GetUniqueId Export TranscribeAudio ClearTranscription
        PerformAudioClassification ClearAudioClassification RemoveMotionBlur AnalyzeForIntellisearch AnalyzeForSlate
    """.split()),
    "MediaPoolItem": frozenset("""
        GetName SetName GetMetadata SetMetadata GetTimeline GetThirdPartyMetadata SetThirdPartyMetadata GetMediaId
        AddMarker GetMarkers GetMarkerByCustomData UpdateMarkerCustomData GetMarkerCustomData DeleteMarkersByColor
        DeleteMarkerAtFrame DeleteMarkerByCustomData AddFlag GetFlagList ClearFlags GetClipColor SetClipColor
        ClearClipColor GetClipProperty SetClipProperty LinkProxyMedia LinkFullResolutionMedia UnlinkProxyMedia
        ReplaceClip ReplaceClipPreserveSubClip GetUniqueId TranscribeAudio ClearTranscription PerformAudioClassification
        ClearAudioClassification GetAudioMapping GetMarkInOut SetMarkInOut ClearMarkInOut MonitorGrowingFile
        RemoveMotionBlur AnalyzeForIntellisearch AnalyzeForSlate
    """.split()),
    "Timeline": frozenset("""
        GetName SetName GetStartFrame GetEndFrame SetStartTimecode GetStartTimecode GetTrackCount AddTrack DeleteTrack
        GetTrackSubType SetTrackEnable GetIsTrackEnabled SetTrackLock GetIsTrackLocked DeleteClips SetClipsLinked
        GetItemListInTrack GetSelectedClips AddMarker GetMarkers GetMarkerByCustomData UpdateMarkerCustomData
        GetMarkerCustomData DeleteMarkersByColor DeleteMarkerAtFrame DeleteMarkerByCustomData GetCurrentTimecode
        SetCurrentTimecode GetCurrentVideoItem GetCurrentClipThumbnailImage GetTrackName SetTrackName DuplicateTimeline
        CreateCompoundClip CreateFusionClip ImportIntoTimeline Export GetSetting SetSetting InsertGeneratorIntoTimeline
        InsertFusionGeneratorIntoTimeline InsertFusionCompositionIntoTimeline InsertOFXGeneratorIntoTimeline
        InsertTitleIntoTimeline InsertFusionTitleIntoTimeline GrabStill GrabAllStills GetUniqueId CreateSubtitlesFromAudio
        DetectSceneCuts ConvertTimelineToStereo GetNodeGraph AnalyzeDolbyVision GetMediaPoolItem GetMarkInOut
        SetMarkInOut ClearMarkInOut GetVoiceIsolationState SetVoiceIsolationState
    """.split()),
    "TimelineItem": frozenset("""
        GetName SetName GetDuration GetEnd GetSourceEndFrame GetSourceEndTime GetFusionCompCount GetFusionCompByIndex
        GetFusionCompNameList GetFusionCompByName GetLeftOffset GetRightOffset GetStart GetSourceStartFrame
        GetSourceStartTime SetProperty GetProperty AddMarker GetMarkers GetMarkerByCustomData UpdateMarkerCustomData
        GetMarkerCustomData DeleteMarkersByColor DeleteMarkerAtFrame DeleteMarkerByCustomData AddFlag GetFlagList
        ClearFlags GetClipColor SetClipColor ClearClipColor AddFusionComp ImportFusionComp ExportFusionComp
        DeleteFusionCompByName LoadFusionCompByName RenameFusionCompByName AddVersion GetCurrentVersion
        DeleteVersionByName LoadVersionByName RenameVersionByName GetVersionNameList GetMediaPoolItem
        GetStereoConvergenceValues GetStereoLeftFloatingWindowParams GetStereoRightFloatingWindowParams SetCDL AddTake
        GetSelectedTakeIndex GetTakesCount GetTakeByIndex DeleteTakeByIndex SelectTakeByIndex FinalizeTake CopyGrades
        SetClipEnabled GetClipEnabled UpdateSidecar GetUniqueId LoadBurnInPreset CreateMagicMask RegenerateMagicMask
        Stabilize SmartReframe GetNodeGraph GetColorGroup AssignToColorGroup RemoveFromColorGroup ExportLUT
        GetLinkedItems GetTrackTypeAndIndex GetSourceAudioChannelMapping GetIsColorOutputCacheEnabled
        GetIsFusionOutputCacheEnabled SetColorOutputCache SetFusionOutputCache GetVoiceIsolationState
        SetVoiceIsolationState ResetAllNodeColors
    """.split()),
}

# Constants read off the live ``resolve`` handle (README: "Looking up timeline export properties").
DOCUMENTED_CONSTANTS = frozenset("""
    EXPORT_AAF EXPORT_DRT EXPORT_EDL EXPORT_FCP_7_XML EXPORT_FCPXML_1_8 EXPORT_FCPXML_1_9 EXPORT_FCPXML_1_10
    EXPORT_HDR_10_PROFILE_A EXPORT_HDR_10_PROFILE_B EXPORT_TEXT_CSV EXPORT_TEXT_TAB EXPORT_DOLBY_VISION_VER_2_9
    EXPORT_DOLBY_VISION_VER_4_0 EXPORT_DOLBY_VISION_VER_5_1 EXPORT_OTIO EXPORT_ALE EXPORT_ALE_CDL EXPORT_NONE
    EXPORT_AAF_NEW EXPORT_AAF_EXISTING EXPORT_CDL EXPORT_SDL EXPORT_MISSING_CLIPS
""".split())

# Fusion's UIManager (only where Resolve has a UI): widgets, the dispatcher and window methods.
UI_MANAGER = frozenset("""
    UIManager UIDispatcher AddWindow VGroup HGroup HGap VGap Label Button LineEdit ComboBox Timer Font
    RunLoop ExitLoop Show Hide GetItems Find Start Stop AddItem scriptapp
""".split())

# Timeline settings and clip properties the scripts read.
DOCUMENTED_SETTINGS = frozenset({"timelineFrameRate", "timelineDropFrameTimecode"})
DOCUMENTED_CLIP_PROPERTIES = frozenset({"File Path", "FPS", "Frames", "Start TC", "Clip Name"})

ALL_METHODS = frozenset().union(*DOCUMENTED.values())
