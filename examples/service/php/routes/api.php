<?php

use App\Http\Controllers\DocumentController;
use Illuminate\Support\Facades\Route;

Route::get('/redirect', [DocumentController::class, 'redirect']);
Route::post('/documents', [DocumentController::class, 'store']);
Route::post('/documents/safe', [DocumentController::class, 'storeSafe']);
Route::get('/health', function () {
    return ['ok' => true];
});
